"""berth.deploy.hubapp: the hub's JupyterHub loads only the plug-ins its config names.

Each check runs in a fresh interpreter: whether a module was imported is the point.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CONFIG = """
c.JupyterHub.spawner_class = "berth"
c.JupyterHub.authenticator_class = "berth-native"
c.JupyterHub.db_url = "sqlite://"
c.NativeAuthenticator.open_signup = True
c.BerthNativeAuthenticator.reserved_names = {"admin"}
c.ContainerSpawner.image = "berth/base-notebook:speed-test"
c.Spawner.notebook_dir = "/home/jovyan/work"
"""

SCRIPT = """
import json, sys
from berth.deploy.hubapp import JupyterHub
hub = JupyterHub()
hub.parse_command_line(["-f", sys.argv[1]])
hub.load_config_file(hub.config_file)
hub.init_db()  # the authenticator keeps its own table in the hub's database
authenticator = hub.authenticator_class(parent=hub, db=hub.db)
spawner_class = hub.spawner_class
spawner_config = spawner_class(config=hub.config)
print(json.dumps({
    "authenticator": type(authenticator).__module__ + "." + type(authenticator).__name__,
    "open_signup": authenticator.open_signup,
    "reserved_names": sorted(authenticator.reserved_names),
    "spawner": spawner_class.__module__ + "." + spawner_class.__name__,
    "image": spawner_config.image,
    "notebook_dir": spawner_config.notebook_dir,
    "log": hub.log.name,
    "other plug-ins imported": sorted(
        name for name in ("oauthenticator", "berth.auth.oidc", "berth.spawner.swarm")
        if name in sys.modules
    ),
}))
"""


def run(tmp_path: Path) -> dict[str, object]:
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(CONFIG)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_configured_plugins_are_loaded_and_configured_the_others_not(tmp_path: Path) -> None:
    """Fails on main before this change: the hub ran `jupyterhub`, which imports every installed
    authenticator and spawner at start (all of OAuthenticator's providers, Berth's Swarm
    spawner) although it runs one of each. Config sections of the plug-ins still apply."""
    assert run(tmp_path) == {
        "authenticator": "berth.auth.native.BerthNativeAuthenticator",
        "open_signup": True,
        "reserved_names": ["admin"],
        "spawner": "berth.spawner.container.ContainerSpawner",
        "image": "berth/base-notebook:speed-test",
        "notebook_dir": "/home/jovyan/work",
        "log": "JupyterHub",
        "other plug-ins imported": [],
    }


PYGMENTS_SCRIPT = """
import json, sys
if sys.argv[1] == "hubapp":
    import berth.deploy.hubapp  # noqa: F401
else:
    import jupyterhub.app  # noqa: F401  (what `jupyterhub` imports)
import alembic.command  # JupyterHub's migrations (imported by jupyterhub.orm anyway)
from mako import exceptions
from mako.template import Template
try:
    Template("${1 / 0}").render()
except ZeroDivisionError:
    page = exceptions.html_error_template().render().decode()
print(json.dumps({
    "pygments": any(name == "pygments" or name.startswith("pygments.") for name in sys.modules),
    "mako highlights": exceptions.pygments_html_formatter is not None,
    "error page": "ZeroDivisionError" in page,
}))
"""


def pygments_run(entry: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PYGMENTS_SCRIPT, entry], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_hub_does_not_import_pygments_and_mako_still_renders_its_error_page() -> None:
    """Fails before this change: alembic -> mako.exceptions imported all of pygments (~4.5 MiB
    of the idle hub) to colour mako's error pages, which the hub never renders."""
    assert pygments_run("jupyterhub") == {
        "pygments": True,
        "mako highlights": True,
        "error page": True,
    }
    assert pygments_run("hubapp") == {
        "pygments": False,
        "mako highlights": False,
        "error page": True,
    }
