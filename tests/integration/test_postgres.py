"""The hub's database on a real PostgreSQL server (Debian's package, tests/postgres_server.py)
through `berth up`, in order, as an operator's day: logins and a spawn whose state is in
PostgreSQL, a hub restart that keeps it, `berth backup` (pg_dump) and `berth restore`, then a
wrong password, an unknown host and a closed port refused by `berth up` with one error and the
running hub untouched, and a hub started against a stopped server that says why in one line.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import docker
import pytest
from deployment import Deployment
from hub_users import BrowserUser, add_user
from postgres_server import postgres_deployment, psql, wait_ready

from berth import engine_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with postgres_deployment(tmp_path_factory.mktemp("pg")) as pair:
        yield pair


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def users_in_database(server) -> set[str]:
    return set(psql(server, "SELECT name FROM users").split())


def hub_identity(engine) -> tuple[str, str, str]:
    hub = engine.containers.get("berth-hub")
    return hub.id, hub.attrs["State"]["StartedAt"], hub.status


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_logins_and_a_spawn_keep_their_state_in_postgresql(pg, engine, state):
    dep, server = pg
    BrowserUser(dep, "admin", dep.admin_password).login()
    alice = BrowserUser(dep, "alice", add_user(dep, "alice"))
    alice.login()
    alice.spawn()
    alice.wait_for_lab(timeout=300)
    assert {"admin", "alice"} <= users_in_database(server)
    servers = psql(server, "SELECT count(*) FROM servers")
    assert int(servers) >= 1
    hub = engine.containers.get("berth-hub")
    no_sqlite = hub.exec_run(["test", "-e", "/srv/berth/data/jupyterhub.sqlite"]).exit_code
    assert no_sqlite != 0, "the hub made an SQLite database"
    state["alice"] = alice


def test_doctor_finds_the_database_answering(pg):
    doctor = pg[0].berth("doctor")
    assert "ok   database: PostgreSQL answers the hub's address" in doctor.stderr, doctor.stderr


def test_a_hub_restart_keeps_users_servers_and_logins(pg, engine, state):
    dep = pg[0]
    hub = engine.containers.get("berth-hub")
    hub.restart(timeout=15)
    engine_client.wait_healthy(hub, "the hub", 120, interval=0.5)
    alice: BrowserUser = state["alice"]
    alice.wait_for_lab(timeout=120)  # her login cookie and her server outlived the restart
    # The restarted hub answers once init_spawners_timeout (10 s) has passed even if its check
    # of alice's server has not ended, and reports the server pending until then; a server
    # found dead would be removed and never become ready.
    dep.wait_ready("alice", timeout=120)
    again = dep.berth("up")
    assert again.returncode == 0 and "nothing changed" in again.stderr, again.stderr


def test_backup_and_restore_through_pg_dump(pg, engine, tmp_path):
    dep, server = pg
    result = dep.berth("backup", "--all", "--to", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr
    assert "hub database (pg_dump)" in result.stderr
    archive = Path(result.stdout.strip().splitlines()[-1])
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        dump = tar.extractfile("hub/database.sql").read()  # type: ignore[union-attr]
    assert "hub/database.sqlite" not in names
    assert b"COPY public.users " in dump and b"\talice\t" in dump
    add_user(dep, "bob")
    assert "bob" in users_in_database(server)
    dep.stop_server("alice")  # her volume is restored too, and must not be in use
    restored = dep.berth("restore", str(archive), "--replace", timeout=600)
    assert restored.returncode == 0, restored.stderr
    assert "loading the hub database" in restored.stderr
    assert "starting the hub again" in restored.stderr
    after = users_in_database(server)
    assert "alice" in after and "bob" not in after
    assert hub_identity(engine)[2] == "running"
    dep.tokens.clear()  # tokens made after the backup went with the database
    listed = dep.berth("users", "list")
    assert listed.returncode == 0 and "bob" not in listed.stdout, listed.stderr
    dep.start_server("alice")


def with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://hub:{password}@{rest.split('@', 1)[1]}"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda url: url.replace(":5432/", ":5433/"), "nothing accepts connections"),
        (lambda url: url.replace("@berth-ops-postgres:", "@berth-ops-nowhere:"), "no address"),
        (
            lambda url: with_password(url, "wrong-password"),
            "PostgreSQL refused the password for the user hub",
        ),
    ],
    ids=["closed-port", "unknown-host", "wrong-password"],
)
def test_an_unusable_database_is_one_error_and_the_running_hub_is_untouched(
    pg, engine, change, words
):
    dep: Deployment = pg[0]
    good = dep.config["hub"]["db_url"]
    before = hub_identity(engine)
    bad = change(good)
    assert bad != good
    dep.config["hub"]["db_url"] = bad
    dep.write_config()
    try:
        result = dep.berth("up", timeout=300)
        assert result.returncode == 1, result.stderr
        errors = error_lines(result.stderr)
        assert len(errors) == 1 and words in errors[0], result.stderr
        assert "Traceback" not in result.stderr and "wrong-password" not in result.stderr
        assert "restarting" not in result.stderr
        assert hub_identity(engine) == before
        assert dep.api("GET", "/hub/api/").status_code == 200
        doctor = dep.berth("doctor")  # reads the same (bad) berth.yaml
        assert doctor.returncode == 1 and "FAIL database: the hub database (" in doctor.stderr
        assert words in doctor.stderr, doctor.stderr
    finally:
        dep.config["hub"]["db_url"] = good
        dep.write_config()
    again = dep.berth("up")
    assert again.returncode == 0 and "nothing changed" in again.stderr, again.stderr


def test_a_hub_started_against_a_stopped_server_says_why(pg, engine):
    dep, server = pg
    assert dep.berth("down").returncode == 0
    server.stop(timeout=10)
    try:
        result = dep.berth("up", timeout=300)
        assert result.returncode == 1, result.stderr
        errors = error_lines(result.stderr)
        assert len(errors) == 1, result.stderr
        assert "berth-hub did not start" in errors[0] and "no address" in errors[0], errors
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get("berth-hub")
    finally:
        server.start()
        wait_ready(server)
    dep.up()
    listed = dep.berth("users", "list")
    assert listed.returncode == 0 and "alice" in listed.stdout, listed.stderr
