"""Where a started container answers, and waiting until it does (or dies trying)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import Protocol
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from .engine_api import EngineRecord
from .specs import Networking


class ContainerWatch(Protocol):
    """What waiting for a boot asks of the engine: is it still running, and its last words."""

    async def inspect_container(self, name_or_id: str) -> EngineRecord | None: ...

    async def logs_tail(self, container_id: str, lines: int = 20) -> str: ...


class AddressError(RuntimeError):
    """The engine did not report an address for the container."""


def container_address(record: EngineRecord, networking: Networking) -> tuple[str, int]:
    """(host, port) the hub connects to, from an inspect record."""
    settings = record.get("NetworkSettings") or {}
    if networking.use_internal_ip:
        network = (settings.get("Networks") or {}).get(networking.network_name or "bridge") or {}
        address = network.get("IPAddress") or settings.get("IPAddress")
        if not address:
            raise AddressError(f"container has no address on network {networking.network_name!r}")
        return str(address), networking.port
    bindings = (settings.get("Ports") or {}).get(f"{networking.port}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            host = binding.get("HostIp") or networking.host_ip
            if host in {"0.0.0.0", "::", ""}:
                host = "127.0.0.1"
            return host, int(binding["HostPort"])
    raise AddressError(f"port {networking.port}/tcp of the container is not published")


async def _answers(client: AsyncHTTPClient, url: str) -> bool:
    try:
        await client.fetch(url, request_timeout=2, follow_redirects=False)
    except HTTPClientError as exc:
        return exc.code < 599  # any HTTP answer means the server is up
    except Exception:
        return False
    return True


async def _listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port (a refusal comes back at once)."""
    try:
        # asyncio.timeout, never asyncio.wait_for: Python 3.11's wait_for swallows a
        # cancellation that arrives as the connect finishes (the boot budget's expiry then
        # went unnoticed and a server that never answered counted as ready).
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


# Boots being waited for in this hub process, per event loop: the probe interval grows with
# their number, so that a burst does not spend the hub's CPU on probes.
_waiting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()

PROBE_INTERVAL = 0.02  # one boot waited for: a refused connection costs the hub ~0.1 ms
MAX_PROBE_INTERVAL = 0.5
SLOW_PROBE_INTERVAL = 0.1


def probe_interval(waiting: int) -> float:
    """Seconds between two probes of one booting server while ``waiting`` boots are awaited."""
    return min(MAX_PROBE_INTERVAL, PROBE_INTERVAL * max(1, waiting))


async def wait_until_ready(
    engine: ContainerWatch, container_id: str, url: str, timeout: float
) -> EngineRecord | None:
    """Wait until ``url`` answers. Returns None then, or the inspect record (with ``_logs``)
    if the container stopped first. Raises TimeoutError at ``timeout`` (the caller's own
    budget normally ends the wait before that, with its message).

    A Jupyter server binds its port only when it is about to serve (jupyter_server binds from
    its event loop, after loading its extensions), so a TCP connect probe every few tens of
    milliseconds (a refusal is answered at once by the container's kernel) tells the moment
    it can answer; only then is the HTTP request sent. The server is seen answering within
    ``probe_interval`` of binding, where a backing-off HTTP poll lost up to 0.5 s."""
    # An own client: JupyterHub's shared one has a small max_clients and the hub needs it.
    client = AsyncHTTPClient(force_instance=True)
    loop = asyncio.get_running_loop()
    _waiting[loop] = _waiting.get(loop, 0) + 1
    try:
        return await _wait(engine, client, container_id, url, timeout)
    finally:
        _waiting[loop] -= 1
        client.close()


async def _wait(
    engine: ContainerWatch, client: AsyncHTTPClient, container_id: str, url: str, timeout: float
) -> EngineRecord | None:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 1.0  # the engine is asked whether it died now and then
    while time.monotonic() < deadline:
        listening = await _listening(host, port)
        if listening and await _answers(client, url):
            return None
        now = time.monotonic()
        if now >= next_check:
            record = await engine.inspect_container(container_id)
            state = (record or {}).get("State") or {}
            if record is None or not (state.get("Running") or state.get("Restarting")):
                record = record or {"State": {"ExitCode": 0}}
                record["_logs"] = await engine.logs_tail(container_id)
                return record
            next_check = now + 2.0
        interval = probe_interval(_waiting.get(loop, 1))
        # Accepted but no HTTP answer: a userland proxy (dockerd's docker-proxy accepts for a
        # container that does not listen yet) or a server still starting behind its port; HTTP
        # requests cost more than refused connects, so these come less often.
        await asyncio.sleep(max(interval, SLOW_PROBE_INTERVAL) if listening else interval)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
