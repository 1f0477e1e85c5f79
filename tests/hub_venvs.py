"""Virtualenvs with Berth and one given JupyterHub release, for running a test hub on it.

Berth's spawners support a range of JupyterHub releases (``JUPYTERHUB_SUPPORTED`` in
berth/versions.py); the tests put the hub of tests/integration/hub_harness.py on each release in
``JUPYTERHUB_TESTED``. ``hub_python(version)`` answers the Python of a virtualenv holding that
release and Berth from this source tree (editable, with the ``hub`` extra), made once under
``$BERTH_HUB_VENVS`` (default: ``.venv-jupyterhub-VERSION`` beside the repository's ``.venv``)
and reused after; the running Python itself when it has that release already.

``python tests/hub_venvs.py VERSION`` prints that Python (scripts/test.sh --jupyterhub).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READY = ".berth-ready"  # written last: a venv whose install was cut short is made again


def venv_dir(version: str) -> Path:
    root = Path(os.environ.get("BERTH_HUB_VENVS", str(REPO)))
    return root / f".venv-jupyterhub-{version}"


def hub_python(version: str) -> str:
    if metadata.version("jupyterhub") == version:
        return sys.executable
    venv = venv_dir(version)
    python = venv / "bin" / "python"
    if not (venv / READY).exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        done = subprocess.run(
            [*install, "-e", f"{REPO}[hub]", f"jupyterhub=={version}"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:  # pip's own words (its warnings are left out when it works)
            raise RuntimeError(f"pip could not make {venv}:\n{done.stdout}{done.stderr}")
        (venv / READY).write_text(version + "\n")
    return str(python)


def installed_jupyterhub(python: str) -> str:
    """The JupyterHub release that `python` imports (checked, not assumed)."""
    return subprocess.run(
        [python, "-c", "import jupyterhub; print(jupyterhub.__version__)"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hub_venvs.py JUPYTERHUB_VERSION")
    print(hub_python(sys.argv[1]))
