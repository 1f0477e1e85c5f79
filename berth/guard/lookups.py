"""What the engine guard learns before it judges a request: the labels of the engine's objects
that the request touches (containers, execs, volumes, Swarm services and tasks), where an allowed
host path really leads, and what is at a system user's home. The policy (:mod:`.policy`) names
what it needs; these functions find it.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import h11

from . import homes, policy
from .bodies import home_root_of, host_path_allowed

READ_SIZE = 65536


class UpstreamDown(Exception):
    """Connecting to the engine's socket was refused (or it is gone): nothing was sent to it."""


@dataclass(frozen=True)
class Upstream:
    socket_path: str  # the engine's unix socket

    @classmethod
    def from_url(cls, url: str) -> Upstream:
        if not url.startswith("unix://"):
            raise ValueError(f"upstream must be unix:///path/to/docker.sock, not {url!r}")
        return cls(url[len("unix://") :])

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_unix_connection(self.socket_path, limit=READ_SIZE)
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise UpstreamDown(f"{self.socket_path}: {exc.strerror}") from exc


async def next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(READ_SIZE))


async def _get_json(upstream: Upstream, path: str) -> tuple[int, Any]:
    """One GET to the engine (for the policy's look-ups): status and decoded JSON."""
    reader, writer = await upstream.connect()
    try:
        conn = h11.Connection(h11.CLIENT)
        request = h11.Request(method="GET", target=path, headers=[("Host", "docker")])
        writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
        response = await next_event(conn, reader)
        if not isinstance(response, h11.Response):
            raise ConnectionError(f"engine answered {response!r}")
        body = bytearray()
        while isinstance(event := await next_event(conn, reader), h11.Data):
            body += event.data
        return response.status_code, json.loads(body or b"null")
    finally:
        writer.close()


class LookupFailed(Exception):
    """The engine answered a look-up with neither the object nor "no such object"."""


async def _inspect(upstream: Upstream, path: str) -> Any:
    """The engine's record at ``path``; None for 404. Any other answer is not a "no": a busy
    engine must not make the guard report a live container as gone."""
    status, data = await _get_json(upstream, path)
    if status == 404:
        return None
    if status != 200 or not isinstance(data, dict):
        message = data.get("message") if isinstance(data, dict) else data
        raise LookupFailed(f"the engine answered {status} to a look-up: {message}")
    return data


def resolve_host_path(path: str, allow_binds: tuple[str, ...]) -> policy.Found | None:
    """Where ``path`` leads once its symbolic links are followed, if the guard can see the
    allowed tree it lies in (mounted into the guard at the same path); else None."""
    for root in allow_binds:
        if host_path_allowed(path, (root,)) and os.path.isdir(root):
            return policy.Found(os.path.realpath(path), {})
    return None


def inspect_home(path: str, roots: tuple[str, ...], user_db: str) -> homes.HostDir | None:
    """What is at a home's path on the host, as the guard sees it (the homes root mounted
    read-only at the same path), with its owner's ids from the host's passwd and group in
    ``user_db``; None when the guard cannot see that root or read those files."""
    root = home_root_of(path, roots)
    if root is None or not os.path.isdir(root) or not user_db:
        return None
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return homes.HostDir("missing")
    except OSError:
        return None
    if stat.S_ISLNK(found.st_mode):
        kind = "link"
    elif stat.S_ISDIR(found.st_mode):
        kind = "directory"
    else:
        kind = "other"
    try:
        passwd = Path(user_db, "passwd").read_text(encoding="utf-8", errors="replace")
        group = Path(user_db, "group").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    ids = homes.owner_ids(passwd, group, found.st_uid)
    return homes.HostDir(kind, found.st_uid, os.path.realpath(path), ids)


async def look_up(upstream: Upstream, ref: policy.Ref) -> policy.Found | None:
    """The Id and labels of ``ref`` on the engine, or None when it does not exist."""
    name = quote(ref.name, safe="")
    if ref.kind in {"volume", "swarm-volume"}:  # a Swarm's: as the manager's engine has it
        data = await _inspect(upstream, f"/volumes/{name}")
        return policy.Found(data["Name"], data.get("Labels") or {}) if data else None
    if ref.kind == "exec":
        data = await _inspect(upstream, f"/exec/{name}/json")
        if data is None:
            return None
        container = await look_up(upstream, policy.Ref("container", str(data["ContainerID"])))
        return policy.Found(data["ID"], container.labels) if container else None
    if ref.kind == "service":
        data = await _inspect(upstream, f"/services/{name}")
        spec = (data or {}).get("Spec") or {}
        return policy.Found(data["ID"], spec.get("Labels") or {}) if data else None
    if ref.kind == "task":
        # A task's container labels are its service's ContainerSpec's, which the guard judged
        # when the service was made (and which an existing service cannot change).
        data = await _inspect(upstream, f"/tasks/{name}")
        task_spec = ((data or {}).get("Spec") or {}).get("ContainerSpec") or {}
        return policy.Found(data["ID"], task_spec.get("Labels") or {}) if data else None
    data = await _inspect(upstream, f"/containers/{name}/json")
    if data is None:
        return None
    return policy.Found(data["Id"], (data.get("Config") or {}).get("Labels") or {})
