"""berth.deploy.hub_waits: the hub's JupyterHub waits for the engine guard's socket and the proxy's
API, against real sockets that come up late, and gives up at its bound."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from berth.deploy import hub_waits


def test_addresses_from_docker_host_and_the_proxy_url() -> None:
    assert {
        "guard": hub_waits.engine_socket("unix:///run/berth-engine/docker.sock"),
        "tcp": hub_waits.engine_socket("tcp://10.0.0.1:2375"),
        "unset": hub_waits.engine_socket(""),
        "proxy": hub_waits.proxy_address("http://berth-proxy:8001"),
        "no port": hub_waits.proxy_address("https://proxy"),
        "no host": hub_waits.proxy_address(""),
    } == {
        "guard": "/run/berth-engine/docker.sock",
        "tcp": None,
        "unset": None,
        "proxy": ("berth-proxy", 8001),
        "no port": ("proxy", 443),
        "no host": None,
    }


async def _ping_server(path: Path, status: bytes, delay: float) -> asyncio.AbstractServer:
    await asyncio.sleep(delay)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nOK")
        await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(answer, path=str(path))


def test_the_engine_wait_ends_when_the_socket_answers_200(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"

    async def scenario() -> tuple[bool, float]:
        late = asyncio.create_task(_ping_server(sock, b"200 OK", delay=0.3))
        started = time.monotonic()
        answered = await hub_waits.engine(f"unix://{sock}", timeout=10)
        (await late).close()
        return answered, time.monotonic() - started

    answered, waited = asyncio.run(scenario())
    assert answered and waited >= 0.3


def test_the_engine_wait_gives_up_on_a_socket_that_refuses(tmp_path: Path) -> None:
    """A socket that answers, but not 200 (the guard's 403 to anything else, say), is not
    ready; the wait returns False at its bound instead of hanging."""
    sock = tmp_path / "docker.sock"

    async def scenario() -> bool:
        server = await _ping_server(sock, b"403 Forbidden", delay=0)
        try:
            return await hub_waits.engine(f"unix://{sock}", timeout=0.3)
        finally:
            server.close()

    assert asyncio.run(scenario()) is False


def test_no_unix_socket_means_nothing_to_wait_for() -> None:
    assert asyncio.run(hub_waits.engine("tcp://127.0.0.1:1", timeout=0)) is True


def test_the_proxy_wait_ends_when_its_port_accepts() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> bool:
        async def listen_late() -> asyncio.AbstractServer:
            await asyncio.sleep(0.3)
            return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)

        late = asyncio.create_task(listen_late())
        answered = await hub_waits.proxy_api(f"http://127.0.0.1:{port}", timeout=10)
        (await late).close()
        return answered

    assert asyncio.run(scenario()) is True
    refused = asyncio.run(hub_waits.proxy_api(f"http://127.0.0.1:{port}", timeout=0.2))
    assert refused is False
