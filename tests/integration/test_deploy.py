"""`berth up` end to end on the real engine: idempotence, config changes, restarts, down, errors.

One deployment for the module, started by the `hub_deployment` fixture in tests/conftest.py.
The tests share it but not an order: each one can run alone (`pytest path::test`). What several
of them need (alice with a known password, her running server and a file in her volume) the
`alice` fixture makes when it is not there yet (tests/integration/deploy_session.py). A test that
changes berth.yaml has `berth up` apply it (or writes the previous file back) before it ends, so
that the next test finds the file and the running deployment in agreement.

How the deployment comes through restarts, failures and config changes is in
test_deploy_restarts.py (a deployment of its own).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import pytest
from deploy_session import (
    EVERY_CONTAINER,
    NOTES,
    SERVICE,
    eventually,
    get_file,
    hub_home,
    login,
    post_login,
    put_file,
    with_alice,
)
from deployment import Deployment

pytestmark = pytest.mark.integration


@pytest.fixture
def alice(hub_deployment: Deployment) -> Deployment:
    return with_alice(hub_deployment)


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
        refused = post_login(session, dep, "admin", "not-the-password")
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
            name=f"berth-test-other-hub-server-{uuid.uuid4().hex[:8]}",  # a killed run's stays
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
