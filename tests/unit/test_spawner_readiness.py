"""Readiness of a started server (connect probes, then HTTP) and the spawn path's helpers.

Real sockets on 127.0.0.1 stand in for the server; a small fake stands in for the engine.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from berth.spawner import readiness
from berth.spawner.errors import SpawnException
from berth.spawner.readiness import probe_interval, wait_until_ready
from berth.spawner.timing import PhaseClock, concurrently


class FakeEngine:
    """Answers inspect with a running (or stopped) container; counts the calls."""

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.inspections = 0

    async def inspect_container(self, name_or_id: str) -> dict[str, Any] | None:
        self.inspections += 1
        return {"Id": name_or_id, "State": {"Running": self.running, "ExitCode": 3}}

    async def logs_tail(self, container_id: str, lines: int = 20) -> str:
        return "Traceback: boom\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def http_server(port: int) -> asyncio.Server:
    """A minimal HTTP server: 200 to every request."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


@pytest.fixture
async def port() -> AsyncIterator[int]:
    yield free_port()


def test_probe_interval_grows_with_the_boots_waited_for() -> None:
    assert {n: probe_interval(n) for n in (0, 1, 2, 10, 25, 50)} == {
        0: 0.02,
        1: 0.02,
        2: 0.04,
        10: 0.2,
        25: 0.5,
        50: 0.5,
    }


async def test_listening_tells_a_refused_port_from_an_open_one(port: int) -> None:
    assert not await readiness._listening("127.0.0.1", port)
    server = await http_server(port)
    try:
        assert await readiness._listening("127.0.0.1", port)
    finally:
        server.close()
        await server.wait_closed()


async def test_ready_once_the_server_binds_its_port(port: int) -> None:
    engine = FakeEngine()
    url = f"http://127.0.0.1:{port}/user/a/api"
    servers: list[asyncio.Server] = []

    async def bind_later() -> None:
        await asyncio.sleep(0.3)  # refused connects until then
        servers.append(await http_server(port))

    binder = asyncio.ensure_future(bind_later())
    try:
        assert await wait_until_ready(engine, "c1", url, timeout=30) is None
    finally:
        await binder
        for server in servers:
            server.close()
            await server.wait_closed()
    assert readiness._waiting[asyncio.get_running_loop()] == 0  # counted out again


async def test_a_stopped_container_is_reported_with_its_logs(port: int) -> None:
    engine = FakeEngine(running=False)
    record = await wait_until_ready(engine, "c1", f"http://127.0.0.1:{port}/api", timeout=30)
    assert record is not None
    assert (record["State"]["ExitCode"], record["_logs"]) == (3, "Traceback: boom\n")


async def test_accepted_without_an_http_answer_is_not_ready(port: int) -> None:
    """A userland proxy accepts connections for a container that does not listen yet: the
    probe must go on to HTTP, and wait on while no answer comes (here until the timeout)."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", port)
    try:
        engine = FakeEngine()
        with pytest.raises(TimeoutError):  # never None: that would count as ready
            await wait_until_ready(engine, "c1", f"http://127.0.0.1:{port}/api", 1.5)
        assert engine.inspections >= 1  # it kept asking whether the container still runs
    finally:
        server.close()
        await server.wait_closed()


async def test_a_cancellation_landing_as_a_probe_ends_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The spawner's boot budget ends a hanging boot by cancelling the wait. When that
    cancellation landed just as a connect probe was refused, Python 3.11's asyncio.wait_for
    returned the probe's result and dropped the cancellation: the wait went on to its own
    deadline and the server that never answered counted as ready (seen in
    test_admission_hub.py: "answers after 120.60s", then JupyterHub's http_timeout). Fails
    with wait_for in the probe."""
    waiting: asyncio.Task[Any] | None = None
    probes = 0

    async def refused_as_the_budget_runs_out(host: str, port: int) -> Any:
        nonlocal probes
        probes += 1
        if probes == 3 and waiting is not None:
            waiting.cancel()
        raise ConnectionRefusedError(host, port)

    monkeypatch.setattr(readiness.asyncio, "open_connection", refused_as_the_budget_runs_out)
    waiting = asyncio.ensure_future(
        wait_until_ready(FakeEngine(), "c1", "http://127.0.0.1:9/api", timeout=3)
    )
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert probes == 3


async def test_concurrently_gives_results_in_order() -> None:
    async def later(value: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return value

    assert await concurrently(later(1, 0.05), later(2, 0)) == [1, 2]


async def test_concurrently_raises_the_first_failure_itself_and_cancels_the_rest() -> None:
    cancelled = asyncio.Event()

    async def refused() -> None:
        raise SpawnException("not allowed", reason="refused", status_code=403)

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(SpawnException) as caught:  # not an ExceptionGroup
        await concurrently(slow(), refused())
    assert caught.value.status_code == 403
    assert cancelled.is_set()


def test_phase_clock_line() -> None:
    ticks = iter([10.0, 10.25, 10.5, 11.0, 12.5])
    clock = PhaseClock(lambda: next(ticks))
    for name in ("prepare", "create", "prepare", "boot"):
        clock.lap(name)
    assert clock.laps == {"prepare": 0.75, "create": 0.25, "boot": 1.5}
    assert str(clock) == "2.50s (prepare 0.75, create 0.25, boot 1.50)"
