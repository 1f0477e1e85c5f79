"""base-notebook's lazy hub-only imports in jupyterhub, against the published package.

The edits of lazy_hub_imports.py are applied, as slim_venv.py applies them, to a copy of the
JupyterHub release the notebook images carry (``JUPYTERHUB_SINGLEUSER_VERSION``: this venv's
when it has that release, else a virtualenv of it made once by tests/hub_venvs.py, since the
host runs the hub image's newer release), and both copies are imported in fresh interpreters of
that virtualenv. Asserted: what jupyterhub-singleuser imports from JupyterHub
no longer loads the hub's database layer or page handlers; the request logger still logs and
still records jupyterhub_request_duration_seconds; and the hub's own paths, which do use those
modules, still behave as published (health checks logged at debug level, database errors
rolled back, scopes working with the ORM).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from hub_venvs import hub_python

from berth.versions import JUPYTERHUB_SINGLEUSER_VERSION

STACK = Path(__file__).resolve().parents[2] / "berth" / "images" / "stack" / "base-notebook"
SPEC = importlib.util.find_spec("jupyterhub")
pytestmark = pytest.mark.skipif(SPEC is None, reason="jupyterhub is not installed")


@functools.cache
def singleuser_python() -> str:
    """A Python whose JupyterHub is the release the notebook images carry."""
    return hub_python(JUPYTERHUB_SINGLEUSER_VERSION)

# What jupyterhub-singleuser imports from JupyterHub (its extension and mixins, minus
# jupyter_server, which this venv does not have).
SINGLEUSER_IMPORTS = (
    "jupyterhub.log, jupyterhub.utils, jupyterhub.services.auth, jupyterhub.metrics"
)
HUB_ONLY = (
    "sqlalchemy", "alembic", "mako", "jupyterhub.orm", "jupyterhub.roles", "jupyterhub.handlers",
    "jupyterhub.user", "jupyterhub.spawner", "jupyterhub.crypto", "jupyterhub.app",
)  # fmt: skip

# A request handled and logged as jupyterhub-singleuser's log_function does it.
REQUEST = r"""
import io, logging
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.web import Application, RequestHandler
from jupyterhub.log import log_request
from jupyterhub.metrics import REQUEST_DURATION_SECONDS

captured = io.StringIO()
access = logging.getLogger("tornado.access")
access.setLevel(logging.DEBUG)
access.propagate = False

class Levels(logging.Handler):
    def __init__(self):
        super().__init__()
        self.seen = []

    def emit(self, record):
        self.seen.append(record.levelname)
        captured.write(record.getMessage())

class Connection:  # what a handler needs of one before it writes anything
    context = None

    def set_close_callback(self, callback):
        pass

def logged(handler_class, uri="/user/a/api/status?token=secret-value"):
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", uri, "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "127.0.0.1"}),
        connection=Connection(),
    )
    levels = Levels()
    access.addHandler(levels)
    try:
        log_request(handler_class(Application(), request))
    finally:
        access.removeHandler(levels)
    return levels.seen

class Status(RequestHandler):
    pass

def duration_count(handler_class):
    name = f"{handler_class.__module__}.{handler_class.__name__}"
    for metric in REQUEST_DURATION_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["handler"] == name:
                return sample.value
    return 0
"""

SINGLEUSER_PROBE = (
    f"import json, sys\nimport {SINGLEUSER_IMPORTS}\n"
    + REQUEST
    + r"""
hub_only = json.loads(sys.argv[1])
answers = {"levels": logged(Status), "count": duration_count(Status)}
answers["token shown"] = "secret-value" in captured.getvalue()
answers["loaded"] = sorted(
    m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in hub_only)
)
print(json.dumps(answers))
"""
)

HUB_PROBE = (
    "import json, sys\nimport jupyterhub.app\n"
    + REQUEST
    + r"""
import asyncio
import sqlalchemy.exc
from jupyterhub import orm, scopes, utils
from jupyterhub.handlers.pages import HealthCheckHandler

class Health(HealthCheckHandler):  # the hub's own, without the hub around it
    current_user = None

    def set_default_headers(self):
        pass

class Owner:
    rolled_back = 0
    log = logging.getLogger("probe")
    class db:
        @staticmethod
        def rollback():
            Owner.rolled_back += 1

@utils.catch_db_error
async def failing(self):
    raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("database is locked"))

asyncio.run(failing(Owner()))
print(json.dumps({
    "health levels": logged(Health, "/hub/health"),
    "other levels": logged(Status),
    "health count": duration_count(Health),
    "rolled back": Owner.rolled_back,
    "scopes use the orm": scopes.orm.User is orm.User and scopes.orm is orm,
    "expanded": sorted(scopes.expand_scopes({"read:users"})),
}))
"""
)


def run(code: str, site: Path) -> dict:
    result = subprocess.run(
        [singleuser_python(), "-c", code, json.dumps(HUB_ONLY)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def lazy_hub_imports() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lazy_hub_imports", STACK / "lazy_hub_imports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = subprocess.run(
        [singleuser_python(), "-c", "import jupyterhub; print(jupyterhub.__path__[0])"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.strip()  # fmt: skip
    root = tmp_path_factory.mktemp("published")
    shutil.copytree(package, root / "jupyterhub", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def lazy(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lazy")
    shutil.copytree(published / "jupyterhub", root / "jupyterhub")
    written = lazy_hub_imports().install(root)
    assert sorted(p.relative_to(root).as_posix() for p in written) == [
        "berth_lazy_names.py",
        "jupyterhub/log.py",
        "jupyterhub/metrics.py",
        "jupyterhub/scopes.py",
        "jupyterhub/utils.py",
    ]
    return root


def test_singleuser_imports_leave_the_hubs_machinery_out(published: Path, lazy: Path) -> None:
    """Fails without the edits: jupyterhub.log, .utils and .scopes import SQLAlchemy, alembic,
    mako, the ORM and the hub's page handlers into every user server."""
    eager, quick = run(SINGLEUSER_PROBE, published), run(SINGLEUSER_PROBE, lazy)
    assert {"sqlalchemy", "alembic", "mako", "jupyterhub.orm", "jupyterhub.handlers"} <= set(
        eager["loaded"]
    )  # what the edits are for
    assert quick["loaded"] == []
    # The request logger works as published: logged at info level, token scrubbed, and the
    # jupyterhub_request_duration_seconds metric recorded for the handler.
    assert quick["levels"] == eager["levels"] == ["INFO"]
    assert quick["token shown"] is eager["token shown"] is False
    assert quick["count"] == eager["count"] == 1.0


def test_the_hub_paths_behave_as_published(published: Path, lazy: Path) -> None:
    """The stand-ins import what the hub uses when it first uses it: health checks are still
    logged at debug level, database errors still rolled back, scopes still use the ORM."""
    eager, quick = run(HUB_PROBE, published), run(HUB_PROBE, lazy)
    assert quick == eager
    assert quick["health levels"] == ["DEBUG"] and quick["other levels"] == ["INFO"]
    assert quick["rolled back"] == 1 and quick["scopes use the orm"] is True


def test_another_release_stops_the_build(lazy: Path, tmp_path: Path) -> None:
    """A file that is not the one the edits were written for is refused, never patched."""
    site = tmp_path / "site"
    shutil.copytree(lazy, site)  # its files are edited already
    with pytest.raises(SystemExit, match="not the file these edits were written for"):
        lazy_hub_imports().install(site)


def test_the_published_files_are_the_ones_the_edits_were_written_for(published: Path) -> None:
    for relative, (sha256, _) in lazy_hub_imports().EDITS.items():
        assert hashlib.sha256((published / relative).read_bytes()).hexdigest() == sha256
