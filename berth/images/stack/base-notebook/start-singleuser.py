#!/usr/bin/env python3
"""Start jupyterhub-singleuser: the command a JupyterHub spawner runs in Berth's notebook images.

    jupyterhub-singleuser ${NOTEBOOK_ARGS} "$@"

The hub configures the server through the environment it sets (JUPYTERHUB_SERVICE_URL, ...);
NOTEBOOK_ARGS and the command-line arguments work as for start-notebook.py, whose code this uses
(same directory), so the two scripts cannot drift apart.
"""

import importlib.util
import sys
from pathlib import Path


def _start_notebook():
    path = Path(__file__).resolve().with_name("start-notebook.py")
    spec = importlib.util.spec_from_file_location("berth_start_notebook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(_start_notebook().main(singleuser=True))
