"""`berth up` end to end on the real engine: idempotence, config changes, restarts, down, errors.

One deployment for the module, started by the `hub_deployment` fixture in tests/conftest.py.
The tests share it but not an order: each one can run alone (`pytest path::test`). What several
of them need (alice with a known password, her running server and a file in her volume) the
`alice` fixture makes when it is not there yet. A test that changes berth.yaml has `berth up`
apply it (or writes the previous file back) before it ends, so that the next test finds the file
and the running deployment in agreement.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest
import requests
from deployment import NO_LIVE_RESTORE, Deployment, restart_dockerd

pytestmark = pytest.mark.integration


def login(dep: Deployment, user: str, password: str) -> requests.Session:
    """Log in through the login form, as a browser does; returns the session with its cookies."""
    session = dep.session()
    page = session.get(f"{dep.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    form = {"username": user, "password": password}
    if xsrf:
        form["_xsrf"] = xsrf.group(1)
    answer = session.post(f"{dep.url}/hub/login", data=form, timeout=30, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:500]
    return session


SERVICE = ["berth-hub", "berth-proxy", "berth-engine-guard"]  # unprivileged, no capability
EVERY_CONTAINER = [*SERVICE, "berth-firewall"]  # the firewall runs as root with NET_ADMIN only


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


def hub_home(session: requests.Session, dep: Deployment) -> int:
    return session.get(f"{dep.url}/hub/home", timeout=30, allow_redirects=False).status_code


def put_file(dep: Deployment, user: str, name: str, text: str) -> None:
    answer = dep.api(
        "PUT",
        f"/user/{user}/api/contents/{name}",
        json={"type": "file", "format": "text", "content": text},
    )
    assert answer.status_code in (200, 201), answer.text


def get_file(dep: Deployment, user: str, name: str) -> str:
    answer = dep.api("GET", f"/user/{user}/api/contents/{name}")
    assert answer.status_code == 200, answer.text
    return answer.json()["content"]


def user_model(dep: Deployment, name: str) -> dict | None:
    """The user's model from the hub's REST API (None: no such user). A hub that a previous
    test restarted may still be starting (the proxy answers 503): waits up to 120 s for it."""

    def answer() -> requests.Response | None:
        try:
            got = dep.api("GET", f"/hub/api/users/{name}")
        except requests.RequestException:
            return None
        return got if got.status_code in (200, 404) else None

    got = eventually(answer, 120)
    assert got is not None, "the hub's REST API did not answer within 120 s"
    return got.json() if got.status_code == 200 else None


ALICE_PASSWORD = "a-Better-passw0rd"
NOTES = "kept across restarts"


@pytest.fixture
def alice(hub_deployment: Deployment) -> Deployment:
    """The deployment with alice as several tests expect her, whatever ran before: her account
    with ALICE_PASSWORD, her server running, and notes.txt (NOTES) in her volume."""
    dep = hub_deployment
    if user_model(dep, "alice") is None:
        added = dep.berth("users", "add", "alice")
        assert added.returncode == 0, added.stderr
    if dep.passwords.get("alice") != ALICE_PASSWORD:
        changed = dep.berth("users", "set-password", "alice", stdin=ALICE_PASSWORD + "\n")
        assert changed.returncode == 0, changed.stderr
        dep.passwords["alice"] = ALICE_PASSWORD
    server = ((user_model(dep, "alice") or {}).get("servers") or {}).get("")
    if not (server and server.get("ready")):
        dep.start_server("alice")
    if read_or_none(dep, "alice", "notes.txt") != NOTES:
        put_file(dep, "alice", "notes.txt", NOTES)
    return dep


class TestDeployment:
    def test_first_up_gives_a_one_time_admin_password_and_healthy_services(
        self, hub_deployment, engine
    ):
        dep = hub_deployment
        assert dep.admin_password, "berth up did not print the first admin's password"

        def all_healthy():
            states = [engine.containers.get(n).attrs["State"] for n in SERVICE]
            return True if all(s["Health"]["Status"] == "healthy" for s in states) else None

        # berth up returns once each answers; the engine's own healthcheck follows within 15 s.
        assert eventually(all_healthy, 60)
        assert hub_home(login(dep, "admin", dep.admin_password), dep) == 200

    def test_wrong_password_is_refused_and_the_admin_logs_in(self, hub_deployment):
        dep = hub_deployment
        session = dep.session()
        page = session.get(f"{dep.url}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        form = {"username": "admin", "password": "not-the-password"}
        if xsrf:
            form["_xsrf"] = xsrf.group(1)
        refused = session.post(f"{dep.url}/hub/login", data=form, timeout=30, allow_redirects=False)
        assert refused.status_code != 302
        assert hub_home(session, dep) == 302  # still sent to the login page
        assert hub_home(login(dep, "admin", dep.admin_password), dep) == 200

    def test_second_up_changes_nothing(self, hub_deployment, engine):
        dep = hub_deployment
        before = engine.containers.get("berth-hub").id
        result = dep.up()
        assert "nothing changed" in result.stderr
        assert "one-time password" not in result.stderr
        assert engine.containers.get("berth-hub").id == before

    def test_users_and_a_server_with_a_file(self, hub_deployment, engine):
        dep = hub_deployment
        added = dep.berth("users", "add", "bea")
        assert added.returncode == 0, added.stderr
        assert "one-time password" in added.stderr
        duplicate = dep.berth("users", "add", "bea")
        assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
        bad = dep.berth("users", "add", "no/slash")
        assert bad.returncode == 1 and "invalid user name" in bad.stderr
        dep.start_server("bea")
        put_file(dep, "bea", "notes.txt", "bea's notes")
        assert get_file(dep, "bea", "notes.txt") == "bea's notes"
        listed = dep.berth("users", "list")
        assert "bea\tuser\tdefault" in listed.stdout and "admin\tadmin" in listed.stdout
        status = dep.berth("status")
        assert status.returncode == 0, status.stderr
        assert "healthy" in status.stderr and "bea" in status.stdout
        for name in EVERY_CONTAINER:
            assert f"{name}: running" in status.stderr, status.stderr

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

    def test_bad_config_is_refused_before_anything_changes(self, hub_deployment, engine):
        dep = hub_deployment
        hub_before = engine.containers.get("berth-hub").id
        good = dict(dep.config)
        for broken, expected in (
            ({**good, "limts": {}}, "limts"),
            ({**good, "limits": {"memory": "2GB"}}, "limits.memory"),
            ({**good, "listen": {"port": 70000}}, "listen.port"),
            ({**good, "tls": {"cert": "absent.pem", "key": "absent.key"}}, "tls.cert"),
        ):
            dep.write_config(broken)
            result = dep.berth("up")
            assert result.returncode == 1, result.stderr
            assert "berth.yaml" in result.stderr and expected in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
        dep.write_config(good)
        assert engine.containers.get("berth-hub").id == hub_before
        missing = dep.berth("up", "--config", "does-not-exist.yaml")
        assert missing.returncode == 1 and "does-not-exist.yaml" in missing.stderr

    def test_account_operations(self, alice):
        dep = alice
        newer = "another-Better-passw0rd"
        changed = dep.berth("users", "set-password", "alice", stdin=newer + "\n")
        assert changed.returncode == 0, changed.stderr
        dep.passwords["alice"] = newer  # the alice fixture sets ALICE_PASSWORD again
        assert hub_home(login(dep, "alice", newer), dep) == 200
        weak = dep.berth("users", "set-password", "alice", stdin="short\n")
        assert weak.returncode == 1 and "password refused" in weak.stderr
        assert dep.berth("users", "admin", "alice", "on").returncode == 0
        assert dep.api("GET", "/hub/api/users/alice").json()["admin"] is True
        assert dep.berth("users", "admin", "alice", "off").returncode == 0
        assert dep.api("GET", "/hub/api/users/alice").json()["admin"] is False
        assert dep.berth("users", "add", "temp").returncode == 0
        removed = dep.berth("users", "remove", "temp")
        assert removed.returncode == 0, removed.stderr
        assert dep.api("GET", "/hub/api/users/temp").status_code == 404
        missing = dep.berth("users", "remove", "temp")
        assert missing.returncode == 1 and "no user named 'temp'" in missing.stderr

    def test_a_service_token_from_berth_yaml_drives_the_rest_api(self, hub_deployment):
        dep = hub_deployment
        token_file = dep.workdir / "ci.token"
        token_file.write_text("a" * 40 + "\n")
        token_file.chmod(0o644)
        dep.config["services"] = [
            {"name": "ci", "scopes": ["admin:users", "admin:servers"], "token_file": "ci.token"}
        ]
        dep.write_config()
        loose = dep.berth("up")
        assert loose.returncode == 1 and "chmod 600" in loose.stderr, loose.stderr
        token_file.chmod(0o600)
        dep.up()
        headers = {"Authorization": "token " + "a" * 40}
        session = dep.session()
        made = session.post(f"{dep.url}/hub/api/users/svc-made", headers=headers, timeout=30)
        assert made.status_code == 201, made.text
        listed = session.get(f"{dep.url}/hub/api/users", headers=headers, timeout=30)
        assert "svc-made" in listed.text
        denied = session.get(
            f"{dep.url}/hub/api/users", timeout=30, headers={"Authorization": "token " + "b" * 40}
        )
        assert denied.status_code == 403

    def test_a_busy_port_is_refused_and_the_running_hub_kept(self, hub_deployment, engine):
        dep = hub_deployment
        hub_before = engine.containers.get("berth-hub").id
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            dep.write_config({**dep.config, "listen": {"address": "127.0.0.1", "port": port}})
            result = dep.berth("up")
        dep.write_config({**dep.config, "listen": {"address": "127.0.0.1", "port": dep.port}})
        assert result.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
        hub = engine.containers.get("berth-hub")
        assert hub.id == hub_before and hub.status == "running"

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

    def test_logs_of_the_hub_and_of_a_user(self, alice):
        dep = alice
        hub_log = dep.berth("logs", "--tail", "50")
        assert hub_log.returncode == 0 and "JupyterHub" in hub_log.stdout
        # All of the log: the start-up lines are what is looked for, however long it ran.
        user_log = dep.berth("logs", "--user", "alice", "--tail", "1000000")
        assert user_log.returncode == 0 and "jupyterhub-singleuser" in user_log.stdout.lower()
        proxy_log = dep.berth("logs", "--service", "proxy", "--tail", "1000000")
        assert proxy_log.returncode == 0 and "Proxying https://" in proxy_log.stdout
        nobody = dep.berth("logs", "--user", "nobody")
        assert nobody.returncode == 1 and "no server container" in nobody.stderr

    def test_down_keeps_data_and_up_brings_it_back(self, alice, engine):
        dep = alice
        # A user server of another hub on this engine (its own network) must survive our down.
        other = engine.containers.run(
            "berth/foundation:latest",
            ["sleep", "300"],
            entrypoint=[],
            detach=True,
            name="berth-test-other-hub-server",
            labels={"berth.managed": "true", "berth.role": "single-user", "berth.user": "x"},
        )
        try:
            down = dep.berth("down")
            other.reload()
            assert other.status == "running"
        finally:
            other.remove(force=True)
        assert down.returncode == 0, down.stderr
        # This deployment's (spawner prefix "berth"): another test's hub on this engine may
        # have an "alice" too, and our down must leave it alone like the server above.
        ours = {"label": ["berth.user=alice", "berth.prefix=berth"]}
        left = engine.containers.list(all=True, filters=ours)
        assert not [(c.name, c.status, c.labels, list(c.attrs["NetworkSettings"]["Networks"]))
                    for c in left]  # fmt: skip
        for name in EVERY_CONTAINER:
            assert not engine.containers.list(all=True, filters={"name": f"^{name}$"}), name
        names = {v.name for v in engine.volumes.list()}
        assert {"berth-test-deploy-data", "berth-test-deploy-user-alice"} <= names
        refused = dep.berth("down", "--delete-data")  # no terminal: no typed confirmation
        assert refused.returncode == 1 and "confirmation" in refused.stderr
        # What it would delete: the user's volume too, found by its labels.
        assert "berth-test-deploy-user-alice" in refused.stderr
        assert "berth-test-deploy-data" in {v.name for v in engine.volumes.list()}
        result = dep.up()
        assert "one-time password" not in result.stderr  # the admin exists already
        assert hub_home(login(dep, "admin", dep.admin_password), dep) == 200
        dep.start_server("alice")
        assert get_file(dep, "alice", "notes.txt") == NOTES


def read_or_none(dep: Deployment, user: str, name: str) -> str | None:
    try:
        answer = dep.api("GET", f"/user/{user}/api/contents/{name}")
    except requests.RequestException:
        return None
    return answer.json()["content"] if answer.status_code == 200 else None


def eventually(probe, timeout: float):
    """The probe's first non-None answer within `timeout` seconds (polled every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(1)
    return None


def test_up_without_an_engine_says_so(tmp_path):
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "berth", "up"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot reach the Docker engine" in result.stderr
    assert "Traceback" not in result.stderr
