"""The guard's server against a scripted engine double on a unix socket (no Docker needed).

The double records every request the guard sends it and answers from a script, so these tests
can see what reaches the engine (re-serialized, Id-pinned) and inject what a real engine only
does under stress (a failing look-up, a vanished socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import h11
import pytest

from berth.engine_socket import GUARD_ENGINE_DOWN
from berth.guard import health
from berth.guard.bodies import Limits, SwarmLimits
from berth.guard.lookups import Upstream
from berth.guard.server import Guard, serve
from berth.spawner.errors import is_unreachable, never_sent

PREFIX = "berth-guard-unit"
OURS = {"berth.managed": "true", "berth.prefix": PREFIX}
CID = "c" * 64

Answer = tuple[int, list[tuple[str, str]], bytes]


class FakeEngine:
    """Answers each request with ``script(method, target)``; keeps what it received."""

    def __init__(self, script: Callable[[str, str], Answer]) -> None:
        self.script = script
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        request = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert request is not None
        method, target = request.method.decode(), request.target.decode()
        headers = {n.decode(): v.decode() for n, v in request.headers}
        self.received.append((method, target, headers, body))
        status, answer_headers, payload = self.script(method, target)
        if status == 101:
            writer.write(
                conn.send(h11.InformationalResponse(status_code=101, headers=answer_headers))
            )
            writer.write(payload)  # the raw stream starts right after the 101
            echo = await reader.read(65536)  # then echo what the client sends, and end
            writer.write(b"echo:" + echo)
        else:
            headers_out = [*answer_headers, ("Content-Length", str(len(payload)))]
            writer.write(conn.send(h11.Response(status_code=status, headers=headers_out)))
            writer.write(conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage()))
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, engine: FakeEngine | None, limits: Limits | None = None
) -> AsyncIterator[Path]:
    """The guard on ``tmp_path/guard.sock`` in front of ``engine`` (None: no engine socket)."""
    engine_path = tmp_path / "engine.sock"
    server = await asyncio.start_unix_server(engine.handle, engine_path) if engine else None
    limits = limits or Limits(PREFIX, networks=("bridge",))
    guard = Guard(limits, Upstream(str(engine_path)))
    ready = asyncio.Event()
    task = asyncio.ensure_future(serve(str(tmp_path / "guard.sock"), guard, ready))
    await ready.wait()
    try:
        yield tmp_path / "guard.sock"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if server:
            server.close()


async def exchange(socket_path: Path, data: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(socket_path)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


def json_answer(status: int, payload: object) -> Answer:
    return status, [("Content-Type", "application/json")], json.dumps(payload).encode()


def container_record(method: str, target: str) -> Answer:
    if target.startswith("/containers/") and target.endswith("/json"):
        return json_answer(200, {"Id": CID, "Config": {"Labels": OURS}})
    return 204, [], b""


async def test_the_engine_gets_a_reserialized_request_pinned_to_the_id(tmp_path: Path) -> None:
    engine = FakeEngine(container_record)
    async with running(tmp_path, engine) as guard_socket:
        answer = await exchange(
            guard_socket,
            b"POST /v1.41/containers/ada/stop?t=5 HTTP/1.1\r\nHost: docker\r\n"
            b"Transfer-Encoding: chunked\r\nX-Custom: kept\r\n\r\n0\r\n\r\n",
        )
    assert answer.startswith(b"HTTP/1.1 204 ")
    lookup, forwarded = engine.received
    assert lookup[:2] == ("GET", "/containers/ada/json")
    method, target, headers, body = forwarded
    assert (method, target, body) == ("POST", f"/v1.41/containers/{CID}/stop?t=5", b"")
    assert headers == {"host": "docker", "x-custom": "kept", "content-length": "0"}


async def test_a_failing_look_up_is_a_502_never_a_404(tmp_path: Path) -> None:
    """A live container must not be reported gone because the engine was busy: the spawner's
    poll would then declare a running server dead."""
    engine = FakeEngine(lambda method, target: json_answer(500, {"message": "busy"}))
    async with running(tmp_path, engine) as guard_socket:
        answer = await exchange(
            guard_socket, b"GET /v1.41/containers/ada/json HTTP/1.1\r\nHost: docker\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 502 ")
    assert b"berth engine guard: the engine answered 500 to a look-up: busy" in answer
    assert len(engine.received) == 1  # only the look-up; nothing was forwarded


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n",  # forwarded as it is
        b"POST /v1.41/containers/ada/stop HTTP/1.1\r\nHost: docker\r\n\r\n",  # a look-up first
    ],
)
async def test_an_unreachable_engine_is_a_clear_503_the_spawner_recognises(
    tmp_path: Path, request_bytes: bytes
) -> None:
    """A stale upstream socket (after a dockerd restart): on main the guard closed the
    connection without an answer; now a 503 that says why, at once."""
    stale = tmp_path / "engine.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))  # nothing listens: connecting is refused
    async with running(tmp_path, None) as guard_socket:
        answer = await exchange(guard_socket, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    message = json.loads(body)["message"]
    assert message.startswith(GUARD_ENGINE_DOWN) and "Connection refused" in message
    error = docker.errors.APIError("x", SimpleNamespace(status_code=503), explanation=message)
    assert is_unreachable(error) and never_sent(error)


FRAME = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"  # docker's stdout frame header + "hi\n"


def exec_script(method: str, target: str) -> Answer:
    if target.startswith("/exec/") and target.endswith("/json"):
        return json_answer(200, {"ID": "e" * 64, "ContainerID": CID})
    if target.startswith("/containers/"):
        return container_record(method, target)
    return 101, [("Connection", "Upgrade"), ("Upgrade", "tcp")], FRAME


async def test_a_101_answer_turns_into_a_raw_pipe_both_ways(tmp_path: Path) -> None:
    engine = FakeEngine(exec_script)
    body = b'{"Detach": false, "Tty": false}'
    async with running(tmp_path, engine) as guard_socket:
        reader, writer = await asyncio.open_unix_connection(guard_socket)
        writer.write(
            b"POST /v1.41/exec/" + b"e" * 64 + b"/start HTTP/1.1\r\nHost: docker\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        first = await asyncio.wait_for(reader.readexactly(11), 10)
        writer.write(b"stdin")
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert first == FRAME
    assert rest == b"echo:stdin"
    forwarded = engine.received[-1]
    assert forwarded[2]["connection"] == "Upgrade" and forwarded[2]["upgrade"] == "tcp"


async def test_the_socket_is_born_660_and_a_stale_one_is_replaced(tmp_path: Path) -> None:
    stale = tmp_path / "guard.sock"
    server = await asyncio.start_unix_server(lambda r, w: None, stale)
    server.close()
    assert stale.is_socket()
    async with running(tmp_path, FakeEngine(container_record)) as guard_socket:
        assert guard_socket.stat().st_mode & 0o777 == 0o660
    assert not guard_socket.exists()  # removed on the way out


async def test_a_regular_file_in_the_sockets_place_is_not_deleted(tmp_path: Path) -> None:
    (tmp_path / "guard.sock").write_text("operator's file")
    guard = Guard(Limits(PREFIX), Upstream(str(tmp_path / "engine.sock")))
    with pytest.raises(FileExistsError):
        await serve(str(tmp_path / "guard.sock"), guard)
    assert (tmp_path / "guard.sock").read_text() == "operator's file"


async def test_the_health_check_pings_through_to_the_engine(tmp_path: Path) -> None:
    engine = FakeEngine(lambda method, target: (200, [("Content-Type", "text/plain")], b"OK"))
    async with running(tmp_path, engine) as guard_socket:
        healthy = await asyncio.to_thread(health.main, [str(guard_socket)])
    assert healthy == 0 and engine.received[0][:2] == ("GET", "/_ping")
    async with running(tmp_path, None) as guard_socket:  # the engine is gone: unhealthy
        assert await asyncio.to_thread(health.main, [str(guard_socket)]) == 1
    assert health.main([str(tmp_path / "nothing.sock")]) == 1


SWARM = Limits(PREFIX, swarm=SwarmLimits(images=("i",), volume_templates=("v-{username}",)))
SID, TID = "s" * 25, "t" * 25


def swarm_records(method: str, target: str) -> Answer:
    if target == "/services/berth-ada":
        return json_answer(200, {"ID": SID, "Spec": {"Name": "berth-ada", "Labels": OURS}})
    if target == f"/tasks/{TID}":
        spec = {"ContainerSpec": {"Labels": OURS}}
        return json_answer(200, {"ID": TID, "ServiceID": SID, "Spec": spec})
    if target.startswith("/tasks/"):  # a task of Berth's own services: no such labels
        return json_answer(200, {"ID": "x", "Spec": {"ContainerSpec": {}}})
    return json_answer(200, [])


async def test_a_task_listing_reaches_the_engine_for_the_judged_service_only(
    tmp_path: Path,
) -> None:
    """The guard looks the service up by the name it was asked about, then forwards the listing
    with that service's full ID (a name or ID prefix judged is the service listed)."""
    engine = FakeEngine(swarm_records)
    query = b"filters=%7B%22service%22%3A+%5B%22berth-ada%22%5D%7D"
    async with running(tmp_path, engine, SWARM) as guard_socket:
        answer = await exchange(
            guard_socket, b"GET /v1.41/tasks?" + query + b" HTTP/1.1\r\nHost: docker\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 200 ")
    lookup, forwarded = engine.received
    assert lookup[:2] == ("GET", "/services/berth-ada")
    assert forwarded[:2] == (
        "GET", f"/v1.41/tasks?filters=%7B%22service%22%3A%5B%22{SID}%22%5D%7D"
    )  # fmt: skip


async def test_a_task_is_judged_by_its_container_labels(tmp_path: Path) -> None:
    engine = FakeEngine(swarm_records)
    async with running(tmp_path, engine, SWARM) as guard_socket:
        ours = await exchange(
            guard_socket, f"GET /v1.41/tasks/{TID} HTTP/1.1\r\nHost: docker\r\n\r\n".encode()
        )
        theirs = await exchange(
            guard_socket, b"GET /v1.41/tasks/hubtask HTTP/1.1\r\nHost: docker\r\n\r\n"
        )
    assert ours.startswith(b"HTTP/1.1 200 ")
    assert theirs.startswith(b"HTTP/1.1 403 ") and b"is not Berth's" in theirs
    assert [r[1] for r in engine.received] == [
        f"/tasks/{TID}",
        f"/v1.41/tasks/{TID}",
        "/tasks/hubtask",
    ]
