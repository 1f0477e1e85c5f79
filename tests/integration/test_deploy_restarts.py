"""`berth up` on the real engine: how a deployment comes through restarts and failures.

A config change restarts the hub and leaves users' servers alone; users stay reachable through
proxy and hub restarts; a failed hub replacement puts the previous hub back; a killed or crashed
hub comes back; servers survive a dockerd restart. One deployment for the module (the
`hub_deployment` fixture in tests/conftest.py), shared as in test_deploy.py: each test can run
alone, and the `alice` fixture (tests/integration/deploy_session.py) makes her account, her
server and her file when they are not there yet.
"""

from __future__ import annotations

import time

import pytest
from deploy_session import (
    ALICE_PASSWORD,
    NOTES,
    SERVICE,
    eventually,
    get_file,
    hub_home,
    login,
    read_or_none,
    with_alice,
)
from deployment import NO_LIVE_RESTORE, Deployment, restart_dockerd

pytestmark = pytest.mark.integration


def wait_restarted(container, started: str, timeout: float = 60):
    """The container once it runs again since a start other than `started`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "running" and container.attrs["State"]["StartedAt"] != started:
            return container
        time.sleep(0.5)
    raise AssertionError(f"{container.name} did not restart: {container.attrs['State']}")


def alice_servers(engine) -> list:
    return engine.containers.list(filters={"label": "berth.user=alice"})


@pytest.fixture
def alice(hub_deployment: Deployment) -> Deployment:
    return with_alice(hub_deployment)


class TestDeployment:
    def test_config_change_restarts_the_hub_and_servers_survive(self, alice, engine):
        dep = alice
        session = login(dep, "admin", dep.admin_password)
        server = engine.containers.list(filters={"label": "berth.user=alice"})[0]
        hub_before = engine.containers.get("berth-hub").id
        untouched = {name: engine.containers.get(name).id for name in SERVICE[1:]}
        dep.config["limits"] = {"memory": "1G"}
        dep.config["idle_culler"] = {"enabled": True, "timeout": 600, "every": 60}
        dep.write_config()
        result = dep.up()
        assert "mem_limit" in result.stderr and "JupyterHub.services" in result.stderr
        culler = dep.api("GET", "/hub/api/services/idle-culler").json()
        assert culler.get("command") and culler.get("pid"), culler  # a managed, running service
        assert engine.containers.get("berth-hub").id != hub_before
        assert {name: engine.containers.get(name).id for name in untouched} == untouched
        server.reload()
        assert server.status == "running"  # the user's server was not touched
        assert get_file(dep, "alice", "notes.txt") == NOTES
        assert hub_home(session, dep) == 200  # still logged in: same cookie secret

    def test_users_stay_reachable_through_proxy_and_hub_restarts(self, alice, engine):
        """A restarted proxy starts with no routes: the hub adds them again within its check
        interval (15 s). A restarted hub finds the proxy's routes still in place."""
        dep = alice
        engine.containers.get("berth-proxy").restart(timeout=10)
        assert eventually(lambda: read_or_none(dep, "alice", "notes.txt"), 90) == NOTES
        engine.containers.get("berth-hub").restart(timeout=15)
        assert eventually(lambda: read_or_none(dep, "alice", "notes.txt"), 90) == NOTES
        assert dep.up().stderr.count("nothing changed") == 1

    def test_a_failed_hub_replacement_puts_the_previous_hub_back(self, alice, engine):
        """A change that leaves the new hub unable to start (here: a SQLite file in a folder
        that does not exist, which only the hub's own start finds out) is rolled back: the
        previous hub runs again and users keep their servers. (A PostgreSQL database that does
        not answer no longer gets this far: `berth up` checks it before touching the running
        hub; tests/integration/test_postgres.py.)"""
        dep = alice
        hub_before = engine.containers.get("berth-hub").id
        proxy_before = engine.containers.get("berth-proxy").id
        good = dict(dep.config)
        dep.write_config(
            {**good, "hub": {**good["hub"], "db_url": "sqlite:////srv/berth/data/no/hub.sqlite"}}
        )
        failed = dep.berth("up", timeout=600)
        dep.write_config(good)
        assert failed.returncode == 1, failed.stderr
        assert "berth-hub stopped" in failed.stderr  # with the tail of its log
        hub = engine.containers.get("berth-hub")
        assert hub.id == hub_before and hub.status == "running"
        assert engine.containers.get("berth-proxy").id == proxy_before
        assert not engine.containers.list(all=True, filters={"name": "berth-hub-previous"})
        assert eventually(lambda: read_or_none(dep, "alice", "notes.txt"), 90) == NOTES

    def test_a_killed_hub_comes_back_with_berth_up(self, alice, engine):
        dep = alice
        engine.containers.get("berth-hub").kill()
        result = dep.up()
        assert "the hub was not running" in result.stderr
        assert get_file(dep, "alice", "notes.txt") == NOTES

    def test_a_crashed_hub_is_restarted_by_the_engine(self, alice, engine):
        dep = alice
        hub = engine.containers.get("berth-hub")
        started = hub.attrs["State"]["StartedAt"]
        # SIGKILL JupyterHub (tini's child; tini itself, as PID 1, cannot be killed from inside):
        # tini exits with it and the container stops, as if the hub had crashed.
        # Detached: on Podman the exec session goes with the container, before it is inspected.
        hub.exec_run(["sh", "-c", "kill -9 $(cat /proc/1/task/1/children)"], detach=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            hub.reload()
            state = hub.attrs["State"]
            if state["StartedAt"] != started and state.get("Health", {}).get("Status") == "healthy":
                break
            time.sleep(1)
        else:
            pytest.fail(f"the hub did not come back: {hub.attrs['State']}")
        assert get_file(dep, "alice", "notes.txt") == NOTES

    def test_servers_survive_a_dockerd_restart(self, alice, engine):
        # Docker's alone: not run on Podman (tests/engine_support.py).
        if not engine.info().get("LiveRestoreEnabled"):
            pytest.skip(NO_LIVE_RESTORE)  # under CI, a failure (tests/conftest.py)
        dep = alice
        session = login(dep, "alice", ALICE_PASSWORD)
        before = {
            c.name: c.attrs["State"]["StartedAt"]
            for c in (*map(engine.containers.get, SERVICE), *alice_servers(engine))
        }
        restart_dockerd()
        for name, started in before.items():
            container = engine.containers.get(name)
            if name == "berth-engine-guard":
                # Its mounted socket is the old, dead one: it exits and its restart policy
                # starts it again with the new one (berth/engine_socket.py).
                container = wait_restarted(container, started)
            else:
                assert container.attrs["State"]["StartedAt"] == started, f"{name} restarted"
            assert container.status == "running", name
        assert get_file(dep, "alice", "notes.txt") == NOTES
        assert hub_home(session, dep) == 200
