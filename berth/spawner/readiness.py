"""Where a started container answers, and waiting until it does (or dies trying)."""

from __future__ import annotations

import asyncio
import time

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from .engine_api import ContainerRuntime, EngineRecord
from .specs import Networking


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


async def wait_until_ready(
    engine: ContainerRuntime, container_id: str, url: str, timeout: float
) -> EngineRecord | None:
    """Wait until ``url`` answers. Returns None then, or the inspect record (with ``_logs``)
    if the container stopped first. Gives up silently at ``timeout`` (JupyterHub's own
    ``start_timeout`` / ``http_timeout`` take over from there)."""
    # An own client: JupyterHub's shared one has a small max_clients and the hub needs it.
    client = AsyncHTTPClient(force_instance=True)
    try:
        return await _wait(engine, client, container_id, url, timeout)
    finally:
        client.close()


async def _wait(
    engine: ContainerRuntime, client: AsyncHTTPClient, container_id: str, url: str, timeout: float
) -> EngineRecord | None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    next_check = 0.0
    while time.monotonic() < deadline:
        if await _answers(client, url):
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
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    return None
