"""Upgrading the hub's JupyterHub under running servers: the database made by the older release
is backed up, then migrated with `jupyterhub upgrade-db` (berth/deploy/dbupgrade.py, which the
hub container's entry runs before JupyterHub), and the users, their running servers and their
volumes survive.

A hub of tests/integration/hub_harness.py runs first on the oldest JupyterHub of
``JUPYTERHUB_TESTED`` (its own virtualenv, tests/hub_venvs.py): a user's server is started and
writes a file into its volume, another user is made. The hub stops, the newest release refuses
the old database as it is, Berth's upgrade step backs it up and migrates it, and the hub starts
again on the newest release over the same database, proxy and containers.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_harness import Hub
from hub_marks import HUB_MARKS
from hub_venvs import hub_python

from berth.versions import JUPYTERHUB_TESTED

pytestmark = HUB_MARKS

OLD, NEW = JUPYTERHUB_TESTED[0], JUPYTERHUB_TESTED[-1]
CONFIG = """
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "never"
c.ContainerSpawner.volumes = {{"{{prefix}}-{{username}}": "/home/jovyan/work"}}
"""


def revision(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def berth_upgrade(python: str, hub: Hub) -> subprocess.CompletedProcess[str]:
    """Berth's upgrade step as the hub's entry runs it, on `python`'s JupyterHub."""
    return subprocess.run(
        [python, "-m", "berth.deploy.dbupgrade", "jupyterhub_config.py", "db-backups"],
        cwd=hub.workdir, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture
def old_hub(tmp_path: Path) -> Iterator[Hub]:
    hub = Hub(tmp_path / "hub", CONFIG, python=hub_python(OLD))
    try:
        yield hub.start()
    finally:
        hub.cleanup()


def test_an_upgrade_keeps_users_servers_and_volumes(old_hub: Hub):
    hub, new_python = old_hub, hub_python(NEW)
    database = hub.workdir / "jupyterhub.sqlite"
    hub.spawn("alice")
    before = hub.container("alice").id
    hub.execute("alice", "open('/home/jovyan/work/kept.txt', 'w').write('from the old hub')")
    hub.create_user("bob")
    hub.stop_hub()
    old_revision = revision(database)

    # The newest JupyterHub does not run on the old schema by itself.
    hub.python = new_python
    with pytest.raises(RuntimeError, match="upgrade-db"):
        hub.start_hub()

    upgraded = berth_upgrade(new_python, hub)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"migrated the hub database from schema {old_revision}" in upgraded.stderr
    (copy,) = (hub.workdir / "db-backups").iterdir()
    assert copy.name.startswith(f"jupyterhub-{old_revision}-") and copy.suffix == ".sqlite"
    assert (copy.stat().st_mode & 0o777, copy.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert revision(copy) == old_revision != revision(database)

    hub.start_hub()
    assert hub.user_model("alice")["servers"][""]["ready"]
    assert hub.container("alice").id == before  # the same container, never restarted
    assert hub.execute("alice", "print(open('/home/jovyan/work/kept.txt').read())").strip() == (
        "from the old hub"
    )
    assert hub.user_model("bob")["name"] == "bob"

    # Once current, the step does nothing (no second copy).
    again = berth_upgrade(new_python, hub)
    assert again.returncode == 0 and "schema is current" in again.stderr, again.stderr
    assert len(list((hub.workdir / "db-backups").iterdir())) == 1
    hub.stop("alice")


def test_an_older_jupyterhub_refuses_a_newer_database(old_hub: Hub):
    """Going back (an older Berth on a database a newer one migrated) is refused with one line
    that says what to do, and the database is left as it is."""
    hub = old_hub
    hub.stop_hub()
    new = berth_upgrade(hub_python(NEW), hub)  # migrates the (empty) hub's database
    assert new.returncode == 0, new.stderr
    newer = revision(hub.workdir / "jupyterhub.sqlite")
    back = berth_upgrade(hub_python(OLD), hub)
    assert back.returncode == 1
    assert (
        back.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"berth: error: the hub database was migrated by a newer JupyterHub (schema {newer})"
        )
    ), back.stderr
    assert revision(hub.workdir / "jupyterhub.sqlite") == newer
