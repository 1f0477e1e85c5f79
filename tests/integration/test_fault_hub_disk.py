"""A fault against a real `berth up` deployment: the filesystem holding the hub's own database
fills up while it serves. Logins, a spawn and an admin API call fail cleanly or succeed, the hub
keeps answering, and once space is back the database is intact, nothing made before is lost,
and logins and spawns work again. (The other faults: test_faults.py.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from deployment import Deployment, deployment
from fault_checks import (
    FILL_VOLUME,
    MEMORY_LIMIT,
    assert_hub_database_intact,
    containers_of,
    server_answers,
    settle,
    small_tmpfs,
)
from hub_users import BrowserUser, HubWatcher, add_user

pytestmark = pytest.mark.integration

HUB_DATA_SIZE = 64 * 2**20
HUB_DATABASE = "/srv/berth/data/jupyterhub.sqlite"
HUB_FILLER = "/srv/berth/data/filler"
# The same fill, in the hub's data directory, as the hub's own user (exec's default user).
FILL_HUB_DATA = FILL_VOLUME.replace("{mount}/ballast", HUB_FILLER).replace(
    "{mount}", "/srv/berth/data"
)


def hub_data_on_small_tmpfs(engine: docker.DockerClient) -> Any:
    """A `prepare` for `deployment`: the hub's data volume made before `berth up` (which keeps
    an existing volume) as a 64 MiB tmpfs with the labels `berth up` gives it, and a container
    that keeps it mounted, so that its files outlive a restart of the hub (a tmpfs volume is
    emptied when its last user stops)."""

    def prepare(config: dict[str, Any]) -> None:
        name = config["hub"]["data_volume"]
        engine.volumes.create(
            name,
            driver="local",
            driver_opts=small_tmpfs(HUB_DATA_SIZE, "uid=1000,gid=100,mode=0700"),
            labels={"berth.managed": "true", "berth.role": "hub-data"},
        )
        engine.containers.run(
            "berth/hub:latest",
            name=f"{name}-holder",  # PREFIX-named: the deployment's teardown removes it
            entrypoint=["sleep", "infinity"],
            volumes={name: {"bind": "/held", "mode": "ro"}},
            network_mode="none",
            detach=True,
        )

    return prepare


def hub_exec(engine: docker.DockerClient, code: str) -> str:
    result = engine.containers.get("berth-hub").exec_run(["python", "-c", code])
    assert result.exit_code == 0, result.output
    return result.output.decode()


def clean_failure(answer: Any) -> bool:
    """A refusal a person can read: an HTTP error, without a Python traceback in it."""
    return answer.status_code >= 400 and "Traceback" not in answer.text


def hub_health(dep: Deployment) -> int:
    try:
        return dep.session().get(f"{dep.url}/hub/health", timeout=10).status_code
    except requests.RequestException:
        return 0


def wait_hub_healthy(dep: Deployment, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while hub_health(dep) != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"the hub did not answer /hub/health within {timeout:.0f} s")
        time.sleep(1)


def described_answer(answer: requests.Response) -> str:
    return f"HTTP {answer.status_code} {answer.text[:160]!r}"


def users_and_servers(dep: Deployment) -> dict[str, list[str]]:
    """Every user the hub's API lists, with the names of their ready servers."""
    answer = dep.api("GET", "/hub/api/users")
    assert answer.status_code == 200, answer.text
    return {
        user["name"]: sorted(n for n, s in (user.get("servers") or {}).items() if s.get("ready"))
        for user in answer.json()
    }


# It needs a deployment of its own (a hub on a small data volume), made by the test itself.
def test_hub_data_disk_full(tmp_path: Path, engine: docker.DockerClient):
    """The filesystem of the hub's SQLite database fills up while the hub serves."""
    prepare = hub_data_on_small_tmpfs(engine)
    with deployment(tmp_path, {"limits": {"memory": MEMORY_LIMIT}}, prepare) as dep:
        # Made before the fill: users with passwords, one running server.
        passwords = {name: add_user(dep, name) for name in ["early", "spawner", "later"]}
        dep.start_server("early")
        dep.token("early")  # (making a token writes to the database)
        before = users_and_servers(dep)
        fill_started = int(time.time()) - 1
        with HubWatcher(dep) as watcher:
            filled = hub_exec(engine, FILL_HUB_DATA)
            assert filled == "True\n", filled  # ENOSPC: nothing more fits beside the database
            outcomes: dict[str, str] = {}
            try:
                person = BrowserUser(dep, "early", passwords["early"])
                page = person.session.get(f"{dep.url}/hub/login", timeout=60)
                outcomes["login page"] = described_answer(page)
                assert page.status_code == 200 or clean_failure(page), page.text[:2000]
                login = person.session.post(
                    f"{dep.url}/hub/login",
                    data={
                        "username": "early",
                        "password": passwords["early"],
                        "_xsrf": person.xsrf(page.text),
                    },
                    timeout=60,
                    allow_redirects=False,
                )
                outcomes["login"] = described_answer(login)
                assert login.status_code == 302 or clean_failure(login), login.text[:2000]
                wrong = person.session.post(
                    f"{dep.url}/hub/login",
                    data={"username": "spawner", "password": "wrong", "_xsrf": person.xsrf("")},
                    timeout=60,
                    allow_redirects=False,
                )
                outcomes["wrong password"] = described_answer(wrong)
                assert wrong.status_code != 302, "a wrong password was let in"
                assert "Traceback" not in wrong.text, wrong.text[:2000]
                spawn = dep.api("POST", "/hub/api/users/spawner/server")
                outcomes["spawn"] = described_answer(spawn)
                assert spawn.status_code in (201, 202) or clean_failure(spawn), spawn.text
                made = dep.api("POST", "/hub/api/users", json={"usernames": ["during"]})
                outcomes["admin: create a user"] = described_answer(made)
                assert made.status_code == 201 or clean_failure(made), made.text
                listed = dep.api("GET", "/hub/api/users")
                outcomes["admin: list users"] = described_answer(listed)
                assert listed.status_code == 200 or clean_failure(listed), listed.text
                token = dep.berth("token", "spawner", timeout=120)
                outcomes["berth token"] = f"exit {token.returncode} {token.stderr.strip()!r}"
                assert token.returncode == 0 or (
                    "Traceback" not in token.stderr and len(token.stderr.splitlines()) <= 2
                ), token.stderr
                outcomes["health"] = str(hub_health(dep))
                # A running server checks each new token with the hub, which records the
                # token's activity in its database: a refusal here must be clean too.
                status = dep.api("GET", "/user/early/api/status", user="early")
                outcomes["early's running server, first use of a token"] = described_answer(status)
                assert status.status_code == 200 or clean_failure(status), status.text[:2000]
            finally:
                print("while the hub's disk was full:", *outcomes.items(), sep="\n  ")
                hub_exec(engine, f"import os; os.remove({HUB_FILLER!r})")
            wait_hub_healthy(dep)  # (the watcher below says whether it ever stopped answering)
            logs = engine.containers.get("berth-hub").logs(since=fill_started).decode()
            print("the hub's log while full:", *logs.splitlines()[-60:], sep="\n  ")

            assert_hub_database_intact(engine)
            settle(dep, ["spawner"])  # the spawn sent while full ended one way or the other
            during = users_and_servers(dep)
            assert during["spawner"] in ([], [""]), during
            if not during["spawner"]:  # refused: cleanly, with no container left behind
                assert not containers_of(engine, "spawner"), containers_of(engine, "spawner")
            lost = {u: s for u, s in before.items() if u != "spawner" and during.get(u) != s}
            assert not lost, f"lost after the disk was full: {lost}; now {during}"
            # The token refused while full may stay refused by that server for the time its
            # hub-auth cache keeps an answer (docs/security.md); a new token works at once.
            again = dep.api("GET", "/user/early/api/status", user="early").status_code
            print("the token refused while full, once space is back: HTTP", again)
            dep.tokens.pop("early")
            assert server_answers(dep, "early")
        watcher.assert_answered_throughout()

        # What the hub's API says is what its database holds: a restarted hub (the tmpfs stays
        # mounted by the holder) says the same.
        engine.containers.get("berth-hub").restart(timeout=30)
        time.sleep(2)
        wait_hub_healthy(dep)
        assert users_and_servers(dep) == during
        # A new login and spawn work, as a person does them.
        person = BrowserUser(dep, "later", passwords["later"])
        person.login()
        person.spawn()
        person.wait_for_lab(timeout=240)
        assert_hub_database_intact(engine)
