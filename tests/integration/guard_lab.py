"""The engine guard as a process on a socket of its own, for the guard's integration tests
(test_guard.py: the spawner and attacks through the Engine API; test_guard_wire.py: attacks on
the HTTP framing itself): its fixtures, this run's object prefix and raw-socket helpers."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from guard_process import guard_process

from berth.spawner import specs

RUN = uuid.uuid4().hex[:8]
PREFIX = f"berth-guard-{RUN}"
HUB_IMAGE = "berth/hub:latest"
# The engine under test (DOCKER_HOST: Podman's socket under `scripts/test.sh --engine podman`).
ENGINE_SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
HUB_UID = 1000


def wait_for_socket(path: Path, process: subprocess.Popen[bytes] | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.is_socket():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the guard exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no guard socket at {path} after {seconds}s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def socket_gid() -> int:
    return os.stat(ENGINE_SOCKET).st_gid


@pytest.fixture(scope="module")
def guard_socket(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, socket_gid: int
) -> Iterator[Path]:
    """A guard process for PREFIX, allowing the bridge network and one shared host directory."""
    workdir = tmp_path_factory.mktemp("guard")
    workdir.chmod(0o755)  # the hub container's user only needs to reach the socket
    (workdir / "shared").mkdir()
    socket_path = workdir / "docker.sock"
    log_path = workdir / "guard.log"
    args = ["--prefix", PREFIX, "--network", "bridge", "--allow-bind", str(workdir / "shared"),
            "--upstream", f"unix://{ENGINE_SOCKET}"]  # fmt: skip
    # The socket group is the engine socket's, as the hub container gets it via group_add.
    with guard_process(socket_path, log_path, args, group=socket_gid):
        try:
            yield socket_path
        finally:
            remove_test_objects(docker_client)


def remove_test_objects(client: Any) -> None:
    for container in client.containers.list(all=True, filters={"name": f"berth-guard-{RUN}"}):
        container.remove(force=True)
    for volume in client.volumes.list(filters={"name": f"berth-guard-{RUN}"}):
        volume.remove(force=True)


@pytest.fixture()
def api(guard_socket: Path) -> Iterator[Any]:
    client = docker.APIClient(base_url=f"unix://{guard_socket}", version="auto", timeout=60)
    yield client
    client.close()


def absent(client: Any, name: str) -> bool:
    # "^name$", not "^/name$": Podman matches names without the leading slash (Docker both).
    return not client.containers.list(all=True, filters={"name": f"^{name}$"})


OURS = {specs.LABEL_MANAGED: "true", specs.LABEL_PREFIX: PREFIX}


def raw_exchange(socket_path: Path, data: bytes, seconds: float = 10) -> bytes:
    """Send raw bytes to the guard; everything it answers until it closes or goes quiet."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(seconds)
        sock.connect(str(socket_path))
        sock.sendall(data)
        answer = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
                if answer.count(b"HTTP/1.1 ") >= 2:
                    sock.settimeout(1)  # all expected answers are in: stop soon
        return answer


def privileged_create_body(image: str) -> bytes:
    host_config = {"CapDrop": ["ALL"], "Privileged": True}
    return json.dumps({"Image": image, "Labels": OURS, "HostConfig": host_config}).encode()
