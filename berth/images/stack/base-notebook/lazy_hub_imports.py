"""Keep the hub's database layer and page handlers out of jupyterhub-singleuser (build time).

jupyterhub-singleuser loads jupyterhub.singleuser.extension, which imports jupyterhub.log,
.utils, .services.auth (-> .scopes) and, through .log, .metrics. At their top, these import
what only the hub uses: sqlalchemy (utils, scopes), jupyterhub.orm and .roles (scopes,
metrics: alembic and mako come with orm) and jupyterhub.handlers (log, for one isinstance check
on the hub's health-check handler). A user server then holds ~39 MiB more and starts ~1 s later
for code it never runs (measured in docs/images.md).

Here, in base-notebook only, those imports become stand-ins from berth_lazy_names.py: modules
imported on first use, and a class check that is False while its module was never imported
(then no object can be an instance of it). Everything a user server runs -- hub OAuth, activity
reports, request logging with its jupyterhub_request_duration_seconds metric, /metrics -- is
unchanged, and so is every hub-only path: it imports what it uses when it first runs.

Each file is checked against the sha256 of the release this was written for, and each line
replaced must occur exactly once: a new JupyterHub release stops the build with a message
instead of being patched blindly. Standard library only; called by slim_venv.py.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def lazy(name: str, target: str, helper: bool = False) -> str:
    """The line binding `name` to a stand-in for module `target` (after the helper's import)."""
    line = f'{name} = LazyModule(__name__, "{name}", "{target}")\n'
    return ("from berth_lazy_names import LazyModule\n" + line) if helper else line


# JupyterHub 5.5.4: file -> (sha256 of the published file, [(line, replacement), ...]).
EDITS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "jupyterhub/log.py": (
        "69ef575eb82159676e24aa0caacf878e84f92473224686d61a41f9e0585c551e",
        [
            (
                "from .handlers.pages import HealthCheckHandler\n",
                "from berth_lazy_names import class_if_loaded\n"
                "HealthCheckHandler = class_if_loaded("
                '"jupyterhub.handlers.pages", "HealthCheckHandler")\n',
            )
        ],
    ),
    "jupyterhub/metrics.py": (
        "def9d8cb020be6b1bcef2f04c2a3f1f51ce9615076ceb48aea6694367ed1a2d4",
        [("from . import orm\n", lazy("orm", "jupyterhub.orm", helper=True))],
    ),
    "jupyterhub/scopes.py": (
        "3afc9eaf51a223f8f3806af9dfc61182c8871ee446b80114dfb296049c3b2be1",
        [
            ("import sqlalchemy as sa\n", lazy("sa", "sqlalchemy", helper=True)),
            (
                "from . import orm, roles\n",
                lazy("orm", "jupyterhub.orm") + lazy("roles", "jupyterhub.roles"),
            ),
        ],
    ),
    "jupyterhub/utils.py": (
        "5463a086012fa37ba0eb5e953e5fb53e13eb1ae248de14cf395dbcce811a7c04",
        [
            (
                "from sqlalchemy.exc import SQLAlchemyError\n",
                lazy("sqlalchemy_exc", "sqlalchemy.exc", helper=True),
            ),
            # An `except` clause needs the class itself: looked up once an error is raised.
            ("except SQLAlchemyError:\n", "except sqlalchemy_exc.SQLAlchemyError:\n"),
        ],
    ),
}


def patched(text: str, edits: list[tuple[str, str]], where: str) -> str:
    for line, replacement in edits:
        if text.count(line) != 1:
            raise ValueError(f"{where}: expected {line.strip()!r} exactly once")
        text = text.replace(line, replacement)
    return text


def install(
    site: Path,
    edits: dict[str, tuple[str, list[tuple[str, str]]]] | None = None,
    label: str = "lazy_hub_imports",
) -> list[Path]:
    """Apply the edits (default: EDITS) under `site` and install berth_lazy_names.py there.

    Returns the files written. Exits with a message when a file is not the expected release.
    """
    written = []
    for relative, (sha256, file_edits) in (EDITS if edits is None else edits).items():
        path = site / relative
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            sys.exit(
                f"{label}: {path} is not the file these edits were written for "
                f"(sha256 {digest}); compare the new release with EDITS and update them"
            )
        try:
            path.write_text(patched(data.decode(), file_edits, str(path)))
        except ValueError as error:
            sys.exit(f"{label}: {error}")
        written.append(path)
    helper = site / "berth_lazy_names.py"
    shutil.copyfile(HERE / "berth_lazy_names.py", helper)
    written.append(helper)
    return written
