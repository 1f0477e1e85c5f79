"""What the hub's JupyterHub waits for at its start, asked often so that it can start early.

`berth up` starts the hub together with the engine guard (berth.deploy.swap): the hub's imports
(most of its start) then overlap the guard's start. Two things must be there before JupyterHub
uses them:

- the engine guard's socket (DOCKER_HOST), before the spawners are initialised: JupyterHub polls
  every running user server at its start, through the guard;
- the proxy's REST API, before JupyterHub's first request to it: JupyterHub retries a refused
  request with a backoff that doubles from 0.2 s (0.2, 0.4, 0.8, 1.6 s, …), so a proxy that
  comes up 0.3 s late could cost the hub's start a second. A connect every 50 ms costs nothing.

Both waits are bounded; after them JupyterHub's own errors and retries apply as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

POLL_SECONDS = 0.05
ENGINE_TIMEOUT = 60.0
PROXY_TIMEOUT = 30.0  # JupyterHub's own retries give up after 30 s as well


def engine_socket(docker_host: str) -> str | None:
    """The unix socket DOCKER_HOST names (the engine guard's), else None (nothing to wait for)."""
    if docker_host.startswith("unix://"):
        return docker_host.removeprefix("unix://") or None
    return None


def proxy_address(api_url: str) -> tuple[str, int] | None:
    parts = urlsplit(api_url)
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def _engine_answers(path: str) -> bool:
    try:
        reader, writer = await asyncio.open_unix_connection(path)
    except OSError:
        return False
    try:
        writer.write(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(3):  # not wait_for: see spawner/readiness.py
            status = await reader.readline()
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def _accepts(host: str, port: int) -> bool:
    try:  # short: before the firewall's rules are in place the bridge drops the SYN
        async with asyncio.timeout(1):  # not wait_for: see spawner/readiness.py
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _until(ready: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if await ready():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)


async def engine(docker_host: str, timeout: float = ENGINE_TIMEOUT) -> bool:
    """Wait until the engine behind DOCKER_HOST answers /_ping (True), or the timeout."""
    path = engine_socket(docker_host)
    return True if path is None else await _until(lambda: _engine_answers(path), timeout)


async def proxy_api(api_url: str, timeout: float = PROXY_TIMEOUT) -> bool:
    """Wait until the proxy's API accepts a connection (True), or the timeout."""
    address = proxy_address(api_url)
    return True if address is None else await _until(lambda: _accepts(*address), timeout)
