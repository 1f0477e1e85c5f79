"""The engine guard's HTTP framing against the real engine: a request pipelined behind an
allowed one, request smuggling by ambiguous framing, host settings outside a create's
HostConfig, conflicting lengths. Each is sent as raw bytes on the guard's socket; the answer
names the refusal and the engine shows nothing happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import guard_lab
import pytest
from guard_lab import (
    OURS,
    PREFIX,
    absent,
    privileged_create_body,
    raw_exchange,
)

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.integration

# The guard's fixtures (guard_lab.py), for the tests below.
api, guard_socket, socket_gid = guard_lab.api, guard_lab.guard_socket, guard_lab.socket_gid


def test_a_pipelined_request_is_judged_on_its_own(
    guard_socket: Path, docker_client: Any, berth_image: str
) -> None:
    """An allowed request carrying a second one behind it in the same write."""
    name = f"{PREFIX}-pipelined"
    body = privileged_create_body(berth_image)
    data = (
        b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
        + f"POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: docker\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    answer = raw_exchange(guard_socket, data)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 403 " in answer and b"privileged containers are not allowed" in answer
    assert absent(docker_client, name)


def test_ambiguous_framing_reaches_nothing(
    guard_socket: Path, docker_client: Any, berth_image: str
) -> None:
    """Content-Length and Transfer-Encoding together, the classic request-smuggling shape: the
    chunked body hides a second request. The guard frames by Transfer-Encoding (as RFC 9112 and
    the engine do) and sends the engine a request it re-serialized, so the hidden request stays
    a body and is never a request of its own."""
    name = f"{PREFIX}-smuggled"
    body = privileged_create_body(berth_image)
    smuggled = (
        f"POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: docker\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    chunk = f"{len(smuggled):x}\r\n".encode() + smuggled + b"\r\n0\r\n\r\n"
    data = (
        b"POST /v1.41/containers/x/wait HTTP/1.1\r\nHost: docker\r\n"
        + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk
    )
    answer = raw_exchange(guard_socket, data, seconds=3)
    assert answer.count(b"HTTP/1.1 ") == 1  # one request, one answer: nothing hidden ran
    assert b"POST /containers/x/wait takes no request body" in answer
    assert absent(docker_client, name)


def test_host_settings_smuggled_past_the_host_config_are_refused(
    api: Any, guard_socket: Path, docker_client: Any, berth_image: str
) -> None:
    """Two ways the engine takes host settings from outside a create's HostConfig: the top
    level of the create body (when HostConfig is absent), and the body of a container start
    on an API version below 1.24. Both made a privileged container with / bound on a raw socket."""
    name = f"{PREFIX}-toplevel"
    body = json.dumps(
        {"Image": berth_image, "Labels": OURS, "Privileged": True, "Binds": ["/:/host"]}
    ).encode()
    answer = raw_exchange(
        guard_socket,
        f"POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: docker\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body,
        seconds=3,
    )
    assert answer.startswith(b"HTTP/1.1 403 ") and b"containers need a HostConfig" in answer
    assert absent(docker_client, name)

    created = api.create_container(
        berth_image,
        name=f"{PREFIX}-oldstart",
        labels=OURS,
        command=["sleep", "60"],
        host_config=api.create_host_config(cap_drop=["ALL"]),
    )
    start_body = json.dumps({"Privileged": True, "Binds": ["/:/host"]}).encode()
    for version in ("1.23", "1.41"):
        answer = raw_exchange(
            guard_socket,
            f"POST /v{version}/containers/{created['Id']}/start HTTP/1.1\r\n".encode()
            + b"Host: docker\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(start_body)}\r\n\r\n".encode()
            + start_body,
            seconds=3,
        )
        assert answer.startswith(b"HTTP/1.1 403 ")
    container = docker_client.containers.get(created["Id"])
    assert container.status == "created" and not container.attrs["HostConfig"]["Privileged"]
    api.remove_container(created["Id"], force=True)


def test_conflicting_lengths_are_a_bad_request(guard_socket: Path) -> None:
    data = (
        b"POST /v1.41/volumes/create HTTP/1.1\r\nHost: docker\r\n"
        b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}"
    )
    answer = raw_exchange(guard_socket, data, seconds=3)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"berth engine guard: bad request" in answer
