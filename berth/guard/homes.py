"""Bind mounts of system users' home directories (``--home-root``), judged as pure functions.

With ``backend: system-users`` the hub asks for containers that mount a host home, e.g.
``/home/alice``, at the image's home. The guard allows exactly that and nothing near it:

* the source is a directory *directly* inside a homes root (``<root>/<name>``), written plainly:
  not the root itself, no ``..``, ``.``, ``//``, no deeper path;
* on the host (the guard has the root mounted read-only at the same path) it exists, is a real
  directory, not a symbolic link, leads nowhere else (its real path is itself), and belongs to
  the uid the container runs as;
* the container runs as that numeric ``uid:gid``, neither 0, no supplementary group 0, and adds
  no capability back: nothing in it can make a root-owned or set-uid-root file in a home
  (which a host user could later run), nor read a home it does not own.

A missing home is refused too: the engine would create it, owned by root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .bodies import Refused, fields, parse_json

_NUMERIC_USER = re.compile(r"^([0-9]{1,10}):([0-9]{1,10})$")
_NUMERIC = re.compile(r"^[0-9]{1,10}$")


@dataclass(frozen=True)
class HostDir:
    """What the guard sees at a home's path: ``kind`` is ``directory``, ``link``, ``other`` or
    ``missing``; ``real`` the path with every symbolic link followed."""

    kind: str
    owner: int = -1
    real: str = ""


def container_uid(body: bytes) -> int:
    """The uid a container that mounts a home runs as; refuses any other identity or power."""
    config = fields(parse_json(body), "container config")
    host = fields(config.get("hostconfig"), "HostConfig")
    user = config.get("user")
    matched = _NUMERIC_USER.match(user) if isinstance(user, str) else None
    if matched is None:
        raise Refused(f"a container that mounts a home must run as a numeric uid:gid, not {user!r}")
    uid, gid = int(matched.group(1)), int(matched.group(2))
    if uid == 0 or gid == 0:
        raise Refused("a container that mounts a home must not run as uid 0 or gid 0 (root)")
    groups: Any = host.get("groupadd") or []
    if not isinstance(groups, list) or not all(
        isinstance(g, str) and _NUMERIC.match(g) for g in groups
    ):
        raise Refused("a container that mounts a home may add numeric groups only (GroupAdd)")
    if any(int(g) == 0 for g in groups):
        raise Refused("a container that mounts a home must not be in group 0 (root)")
    if host.get("capadd"):
        raise Refused("a container that mounts a home may not add capabilities back (CapAdd)")
    return uid


def home_refusal(path: str, uid: int, found: HostDir | None) -> str | None:
    """Why the home at ``path`` may not be mounted into a container running as ``uid``."""
    if found is None:
        return f"home {path!r}: the guard cannot see the homes root to check it"
    if found.kind == "missing":
        return f"home {path!r} does not exist on the host (it is never created as root)"
    if found.kind == "link":
        return f"home {path!r} is a symbolic link"
    if found.kind != "directory":
        return f"home {path!r} is not a directory"
    if found.real != path:
        return f"home {path!r} leads to {found.real!r}"
    if found.owner != uid:
        return f"home {path!r} belongs to uid {found.owner}, not to the container's uid {uid}"
    return None
