"""The engine guard's server: a unix socket speaking the Docker Engine API, in front of the engine.

Each client request is parsed with ``h11``, judged by :mod:`.policy` (after looking up the
labels it needs on the engine) and, if allowed, sent upstream on a fresh connection as a new,
re-serialized request (so the engine sees exactly what was judged: no framing tricks pass through).
The answer streams back as it comes (pull progress, logs, wait); a ``101`` answer (docker-py's
exec start and attach) turns both connections into a raw byte pipe. Refused requests get
``403`` with ``{"message": "berth engine guard: <reason>"}``, which docker-py shows as the error.
When the engine's socket refuses connections (dockerd restarted: see berth/engine_socket.py and
:mod:`.upstream_watch`) every request gets ``503`` at once, before anything was sent upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat

import h11

from berth import engine_socket

from . import homes, policy
from .bodies import MAX_BODY, Limits
from .lookups import (
    READ_SIZE,
    LookupFailed,
    Upstream,
    UpstreamDown,
    inspect_home,
    look_up,
    next_event,
    resolve_host_path,
)

log = logging.getLogger("berth.guard")

# Headers that describe one hop, not the message: never copied from one connection to the other.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"expect",  # the guard reads the whole body before it asks the engine anything
    }
)


class ClientGone(Exception):
    """The client closed its connection."""


class Guard:
    """Serves one listening socket; every client connection is handled by :meth:`serve_client`."""

    def __init__(self, limits: Limits, upstream: Upstream) -> None:
        self.limits = limits
        self.upstream = upstream

    async def serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=READ_SIZE)
        try:
            while await self._one_request(conn, reader, writer):
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            # Malformed or ambiguous framing (e.g. Content-Length with Transfer-Encoding):
            # nothing of it reaches the engine.
            log.warning("refused a malformed request: %s", exc)
            if conn.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
                with contextlib.suppress(ConnectionError, h11.LocalProtocolError):
                    await self._answer(conn, writer, 400, f"berth engine guard: bad request: {exc}")
        except (ClientGone, h11.ProtocolError, asyncio.IncompleteReadError) as exc:
            log.debug("client connection ended: %s", exc)
        except OSError as exc:  # the client left, or the engine is unreachable: close, as it would
            log.info("connection closed: %s", exc)
        except asyncio.CancelledError:
            log.debug("closing a client connection: the guard is stopping")
        finally:
            writer.close()

    async def _one_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection is done (closed or switched)."""
        event = await next_event(conn, reader)
        if not isinstance(event, h11.Request):
            return False
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        body = bytearray()
        while isinstance(part := await next_event(conn, reader), h11.Data):
            body += part.data
            if len(body) > MAX_BODY:
                reason = f"request body larger than {MAX_BODY} bytes"
                log.warning("refused %s: %s", event.method.decode(), reason)
                await self._answer(conn, writer, 413, f"berth engine guard: {reason}")
                return False
        headers = {name.decode().lower(): value.decode("latin-1") for name, value in event.headers}
        request = policy.Request(
            event.method.decode(), event.target.decode("latin-1"), headers, bytes(body)
        )
        try:
            return await self._judge_and_forward(conn, reader, writer, event, request)
        except UpstreamDown as exc:  # raised before anything was sent to the engine or the client
            log.warning("cannot reach the engine for %s %s: %s", request.method, request.path, exc)
            message = (
                f"{engine_socket.GUARD_ENGINE_DOWN} ({exc}); dockerd restarted? The guard "
                "restarts by itself to reach its new socket"
            )
            await self._answer(conn, writer, engine_socket.GUARD_ENGINE_DOWN_STATUS, message)
            return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _judge_and_forward(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        event: h11.Request,
        request: policy.Request,
    ) -> bool:
        body = request.body
        try:
            facts = {ref: await self._fact(ref) for ref in policy.needs(request, self.limits)}
        except LookupFailed as exc:
            log.warning("could not judge %s %s: %s", request.method, request.path, exc)
            await self._answer(conn, writer, 502, f"berth engine guard: {exc}")
            return conn.our_state is h11.DONE and conn.their_state is h11.DONE
        decision = policy.decide(request, self.limits, facts)
        if not decision.allowed:
            log.warning("refused %s %s: %s", request.method, request.path, decision.reason)
            await self._answer(conn, writer, 403, decision.message)
        elif decision.missing is not None:
            missing = decision.missing
            await self._answer(conn, writer, 404, f"No such {missing.kind}: {missing.name}")
        else:
            log.debug("allowed %s %s", request.method, request.path)
            switched = await self._forward(conn, reader, writer, event, decision.target, body)
            if switched:
                return False
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _fact(self, ref: policy.Ref) -> policy.Found | homes.HostDir | None:
        if ref.kind == "hostpath":
            return resolve_host_path(ref.name, self.limits.allow_binds)
        if ref.kind == "home":
            return inspect_home(ref.name, self.limits.home_roots, self.limits.user_db)
        return await look_up(self.upstream, ref)

    async def _answer(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str
    ) -> None:
        payload = json.dumps({"message": message}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        writer.write(conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage()))
        await writer.drain()

    async def _forward(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        target: str,
        body: bytes,
    ) -> bool:
        """Send the request upstream and stream the answer back; True if protocols switched."""
        up_reader, up_writer = await self.upstream.connect()
        try:
            up = h11.Connection(h11.CLIENT)
            upgrade = [(n, v) for n, v in request.headers if n == b"upgrade"]
            headers = [(n, v) for n, v in request.headers if n not in HOP_BY_HOP]
            if upgrade:  # docker-py's exec start/attach ask the engine to hijack the connection
                headers += [(b"connection", b"Upgrade"), *upgrade]
            if body or request.method in {b"POST", b"PUT"}:
                headers.append((b"content-length", str(len(body)).encode()))
            out = h11.Request(
                method=request.method, target=target.encode("latin-1"), headers=headers
            )
            up_writer.write(
                up.send(out) + up.send(h11.Data(data=body)) + up.send(h11.EndOfMessage())
            )
            await up_writer.drain()
            return await self._relay(conn, reader, writer, up, up_reader, up_writer)
        finally:
            up_writer.close()

    async def _relay(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up: h11.Connection,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        response = await next_event(up, up_reader)
        while isinstance(response, h11.InformationalResponse) and response.status_code != 101:
            response = await next_event(up, up_reader)  # e.g. 100 Continue: not for the client
        if isinstance(response, h11.InformationalResponse):  # 101: a raw stream from now on
            writer.write(conn.send(response))
            await writer.drain()
            await _pipe_both(
                (conn.trailing_data[0], reader, up_writer),
                (up.trailing_data[0], up_reader, writer),
            )
            return True
        if not isinstance(response, h11.Response):
            raise ConnectionError(f"engine answered {response!r}")
        headers = [
            (n, v) for n, v in response.headers if n not in HOP_BY_HOP or n == b"content-length"
        ]
        writer.write(
            conn.send(
                h11.Response(
                    status_code=response.status_code, headers=headers, reason=response.reason
                )
            )
        )
        await writer.drain()
        # While the answer streams (a long wait, logs, a pull), notice when the client leaves.
        watcher = asyncio.ensure_future(reader.read(READ_SIZE))
        try:
            while True:
                part = asyncio.ensure_future(next_event(up, up_reader))
                done, _ = await asyncio.wait({part, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if watcher in done:
                    data = watcher.result()
                    if not data:
                        part.cancel()
                        raise ClientGone("client closed the connection mid-answer")
                    conn.receive_data(data)  # a pipelined next request: h11 keeps it
                    watcher = asyncio.ensure_future(reader.read(READ_SIZE))
                event = await part
                if isinstance(event, h11.Data):
                    writer.write(conn.send(h11.Data(data=event.data)))
                    await writer.drain()
                else:
                    writer.write(conn.send(h11.EndOfMessage()))
                    await writer.drain()
                    return False
        finally:
            await _stop_watching(watcher, conn)


async def _stop_watching(watcher: asyncio.Future[bytes], conn: h11.Connection) -> None:
    """End the client watch; bytes it read meanwhile belong to the next request."""
    if not watcher.done():
        watcher.cancel()
    try:
        data = await watcher
    except asyncio.CancelledError:
        return
    conn.receive_data(data)  # b"": the client closed; h11 reports it as the next event


async def _pipe(first: bytes, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    if first:
        sink.write(first)
    while data := await source.read(READ_SIZE):
        sink.write(data)
        await sink.drain()
    if sink.can_write_eof():
        with contextlib.suppress(OSError):
            sink.write_eof()


async def _pipe_both(
    client_to_engine: tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter],
    engine_to_client: tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Copy bytes both ways until the engine ends the stream (the client may half-close first)."""
    upward = asyncio.ensure_future(_pipe(*client_to_engine))
    try:
        await _pipe(*engine_to_client)
    finally:
        upward.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await upward


def _remove_stale_socket(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise FileExistsError(f"{path} exists and is not a socket")
        os.unlink(path)


async def serve(socket_path: str, guard: Guard, ready: asyncio.Event | None = None) -> None:
    """Listen on ``socket_path`` (mode 660: the owner and its group) until cancelled."""
    _remove_stale_socket(socket_path)
    old_umask = os.umask(0o117)  # the socket is born 660: never briefly open to everyone
    try:
        server = await asyncio.start_unix_server(guard.serve_client, socket_path, limit=READ_SIZE)
    finally:
        os.umask(old_umask)
    os.chmod(socket_path, 0o660)
    log.info("engine guard listening on %s (prefix %s)", socket_path, guard.limits.prefix)
    for root in guard.limits.home_roots:
        if not os.path.isdir(root):
            log.warning(
                "cannot see --home-root %s: every home bind will be refused "
                "(mount it into the guard read-only at the same path)",
                root,
            )
    for root in guard.limits.allow_binds:
        if not os.path.isdir(root):
            log.warning(
                "cannot see --allow-bind %s: symbolic links under it are not checked "
                "(mount it into the guard read-only at the same path)",
                root,
            )
    if ready is not None:
        ready.set()
    try:
        async with server:
            await server.serve_forever()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
