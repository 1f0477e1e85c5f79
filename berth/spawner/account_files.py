"""Look accounts up in passwd(5)/group(5) files rather than through the host's NSS.

A hub in a container (`berth up` with ``backend: system-users``) sees the host's accounts only
as the copy the engine guard keeps (``berth/guard/userdb.py``); these functions read such
files with the signatures of ``pwd.getpwnam`` and ``os.getgrouplist`` that
:func:`berth.spawner.system_users.lookup` takes. Files are read at each look-up (they are small
and the look-up is once per spawn), so an account made a moment ago is found.
"""

from __future__ import annotations

import pwd
from collections.abc import Callable
from pathlib import Path


def _lines(path: str) -> list[list[str]]:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def passwd_lookup(path: str) -> Callable[[str], pwd.struct_passwd]:
    """``getpwnam`` on the file at ``path``: KeyError when the name is not there."""

    def getpwnam(name: str) -> pwd.struct_passwd:
        if "\0" in name:
            raise ValueError("embedded null character")
        for parts in _lines(path):
            if len(parts) == 7 and parts[0] == name and parts[2].isdigit() and parts[3].isdigit():
                fields = (parts[0], parts[1], int(parts[2]), int(parts[3]), *parts[4:])
                return pwd.struct_passwd(fields)
        raise KeyError(f"getpwnam(): name not found: {name!r}")

    return getpwnam


def grouplist_lookup(path: str) -> Callable[[str, int], list[int]]:
    """``getgrouplist`` on the file at ``path``: the primary gid and every group listing the
    name as a member."""

    def getgrouplist(name: str, gid: int) -> list[int]:
        groups = [gid]
        for parts in _lines(path):
            if len(parts) != 4 or not parts[2].isdigit():
                continue
            if name in parts[3].split(","):
                groups.append(int(parts[2]))
        return groups

    return getgrouplist
