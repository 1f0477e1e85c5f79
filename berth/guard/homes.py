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
    ``missing``; ``real`` the path with every symbolic link followed; ``owner_ids`` the primary
    and supplementary gids the host's user database gives the owner's uid (None: no account)."""

    kind: str
    owner: int = -1
    real: str = ""
    owner_ids: OwnerIds | None = None


@dataclass(frozen=True)
class OwnerIds:
    """The gids of every account with one uid: primary groups, and groups listing them."""

    primary: frozenset[int]
    groups: frozenset[int]


@dataclass(frozen=True)
class Identity:
    """Who a container that mounts a home runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()


def container_identity(body: bytes) -> Identity:
    """Who a container that mounts a home runs as; refuses root, names and added powers."""
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
    return Identity(uid, gid, tuple(sorted({int(g) for g in groups})))


def owner_ids(passwd: str, group: str, uid: int) -> OwnerIds | None:
    """The gids passwd(5) and group(5) text give the accounts with ``uid``; None if none."""
    names, primary = set(), set()
    for line in passwd.splitlines():
        parts = line.split(":")
        if len(parts) == 7 and parts[2].isdigit() and parts[3].isdigit() and int(parts[2]) == uid:
            names.add(parts[0])
            primary.add(int(parts[3]))
    if not names:
        return None
    groups = set()
    for line in group.splitlines():
        parts = line.split(":")
        if len(parts) == 4 and parts[2].isdigit() and names & set(parts[3].split(",")):
            groups.add(int(parts[2]))
    return OwnerIds(frozenset(primary), frozenset(groups))


def home_refusal(path: str, who: Identity, found: HostDir | None) -> str | None:
    """Why the home at ``path`` may not be mounted into a container running as ``who``: it
    must be the owner's real directory, and the container must have exactly the owner's
    identity from the host's user database (a gid of the hub's choosing, such as the docker
    group's, could leave a set-gid program in the home for the host user to run)."""
    uid = who.uid
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
    ids = found.owner_ids
    if ids is None:
        return f"home {path!r}: no account in the host's user database has uid {uid}"
    if who.gid not in ids.primary:
        return f"home {path!r}: gid {who.gid} is not the primary group of uid {uid}"
    extra = sorted(set(who.groups) - ids.primary - ids.groups)
    if extra:
        shown = ", ".join(map(str, extra))
        return f"home {path!r}: uid {uid} is not in the group(s) {shown} on the host"
    return None
