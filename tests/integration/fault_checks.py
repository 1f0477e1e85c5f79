"""What the fault tests share (test_faults.py, test_fault_hub_disk.py): the users' memory
limit, a volume filler, and checks of users, servers and the hub's database on a deployment."""

from __future__ import annotations

import os
import time
from typing import Any

import docker
import pytest
from deployment import Deployment
from kernel_client import KernelClient

from berth.guard import health

MEMORY_LIMIT = "768M"


def small_tmpfs(size: int, options: str) -> dict[str, str]:
    """The local driver's options for a tmpfs volume of ``size`` bytes. The size goes in pages
    (tmpfs's ``nr_blocks``): Podman 4.3 takes a ``size=`` option for a quota on its own volume
    directory and refuses the volume where the filesystem has no project quota."""
    pages = size // os.sysconf("SC_PAGE_SIZE")
    return {"type": "tmpfs", "device": "tmpfs", "o": f"nr_blocks={pages},{options}"}


# Writes into the volume until it is full. Guarded: it refuses to write into anything bigger
# than the small test volume (an overlay root would fill the host's disk), and stops at 128 MiB.
FILL_VOLUME = """
import errno, os
size = os.statvfs('{mount}').f_blocks * os.statvfs('{mount}').f_frsize
assert size <= 128 * 2**20, f'{mount} holds {{size}} bytes: not the 64 MiB test volume'
try:
    with open('{mount}/ballast', 'wb', buffering=0) as f:
        for _ in range(128):
            f.write(bytes(2**20))
    print('never full')
except OSError as e:
    print(e.errno == errno.ENOSPC)
"""


def create_users(dep: Deployment, names: list[str]) -> None:
    answer = dep.api("POST", "/hub/api/users", json={"usernames": names})
    assert answer.status_code in (201, 409), answer.text


def containers_of(engine: docker.DockerClient, user: str) -> list[dict[str, Any]]:
    """Summaries (Id, Names, State, Labels) of every container, any state and role, that Berth
    made for `user`. Summaries, not Container objects: those are inspected one by one after
    the listing, and a short-lived volume-init container may be gone by then."""
    return engine.api.containers(all=True, filters={"label": f"berth.user={user}"})


def described(containers: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["Names"][0].lstrip("/"), c["State"]) for c in containers]


def server_model(dep: Deployment, user: str) -> dict[str, Any]:
    answer = dep.api("GET", f"/hub/api/users/{user}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def server_answers(dep: Deployment, user: str) -> bool:
    """The user's server answers through the proxy (its REST API, with the user's token)."""
    return dep.api("GET", f"/user/{user}/api/status", user=user).status_code == 200


def kernel(dep: Deployment, user: str, timeout: float = 60) -> KernelClient:
    return KernelClient(f"{dep.url}/user/{user}/", dep.token(user), timeout=timeout)


def assert_works(dep: Deployment, user: str) -> None:
    """The user's server answers, and a fresh kernel runs code."""
    assert server_answers(dep, user), f"{user}'s server does not answer"
    with kernel(dep, user) as k:
        result = k.execute("print(sum(range(1000)))")
    assert result.ok and result.stdout == "499500\n", result.describe()


def assert_hub_database_intact(engine: docker.DockerClient) -> None:
    hub = engine.containers.get("berth-hub")
    check = hub.exec_run(
        [
            "python",
            "-c",
            "import sqlite3; db = sqlite3.connect('/srv/berth/data/jupyterhub.sqlite'); "
            "print(db.execute('pragma integrity_check').fetchone()[0])",
        ]
    )
    assert check.exit_code == 0 and check.output.decode().strip() == "ok", check.output


def running_server(engine: docker.DockerClient, user: str) -> Any:
    found = [c for c in containers_of(engine, user) if c["State"] == "running"]
    assert len(found) == 1, described(containers_of(engine, user))
    return engine.containers.get(found[0]["Id"])


def settle(dep: Deployment, users: list[str], timeout: float = 180) -> dict[str, dict]:
    """Waits until no user has a pending action; returns their models."""
    deadline = time.monotonic() + timeout
    while True:
        models = {user: server_model(dep, user) for user in users}
        pending = {
            user: server.get("pending")
            for user, model in models.items()
            for server in (model.get("servers") or {}).values()
            if server.get("pending") or not server.get("ready")
        }
        if not pending:
            return models
        if time.monotonic() > deadline:
            pytest.fail(f"still pending after {timeout:.0f} s: {pending}")
        time.sleep(1)


GUARD = "berth-engine-guard"


def guard_socket(engine: docker.DockerClient, dep: Deployment) -> str:
    """The guard's socket as the host sees it: in the engine volume the hub mounts."""
    volume = engine.volumes.get(f"{dep.config['hub']['data_volume']}-engine")
    return f"{volume.attrs['Mountpoint']}/docker.sock"


def wait_guard_serving(path: str, timeout: float = 120) -> float:
    """Seconds until a ping through the guard's socket reaches the engine (the hub's path)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if health.ping(path, timeout=2):
            return time.monotonic() - start
        time.sleep(0.1)
    pytest.fail(f"the engine guard did not answer through {path} within {timeout:.0f} s")


def assert_hub_starts_and_stops_through_the_guard(
    dep: Deployment, engine: docker.DockerClient, new_user: str, old_user: str
) -> None:
    """A new server starts and an old one stops, both through the hub (and so the guard);
    the old one's container is really gone (the hub forgets a server whose stop failed)."""
    create_users(dep, [new_user])
    dep.start_server(new_user)
    assert server_answers(dep, new_user), f"{new_user}'s new server does not answer"
    running_server(engine, new_user)
    dep.stop_server(old_user)
    assert not containers_of(engine, old_user), described(containers_of(engine, old_user))
