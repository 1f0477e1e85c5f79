"""The hub's read-only copy of the host's user database (``--user-db-from`` / ``--user-db-to``).

With ``backend: system-users`` the hub must look accounts up (uid, gid, supplementary groups),
and nothing else of the host. Bind-mounting ``/etc/passwd`` into the hub would not do: useradd
and friends replace the file (write a new one, rename it over), and a file bind mount keeps
showing the old one, so accounts made after `berth up` would never be found. So the guard,
which has the host's ``/etc`` read-only (it holds the engine's socket already: it gains nothing
by it), keeps a copy in the volume it shares with the hub, refreshed when the files change,
with only what a look-up needs: ``name:x:uid:gid::home:`` and ``name:x:gid:members``. No
password field (some old systems keep hashes there), no GECOS (names, phone numbers), no shells.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

log = logging.getLogger("berth.guard.userdb")

FILES = ("passwd", "group")
MAX_SIZE = 64 * 1024 * 1024  # far above any local user database
INTERVAL = 2.0  # seconds between checks: an account made with useradd is seen this soon


def _ok_name(name: str) -> bool:
    return bool(name) and not name.startswith(("+", "-")) and "/" not in name


def filter_passwd(text: str) -> str:
    """passwd(5) lines reduced to ``name:x:uid:gid::home:``; malformed and NIS lines dropped."""
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) != 7 or not _ok_name(parts[0]):
            continue
        if not (parts[2].isdigit() and parts[3].isdigit()):
            continue
        out.append(f"{parts[0]}:x:{int(parts[2])}:{int(parts[3])}::{parts[5]}:")
    return "".join(line + "\n" for line in out)


def filter_group(text: str) -> str:
    """group(5) lines reduced to ``name:x:gid:members``; malformed and NIS lines dropped."""
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) != 4 or not _ok_name(parts[0]) or not parts[2].isdigit():
            continue
        out.append(f"{parts[0]}:x:{int(parts[2])}:{parts[3]}")
    return "".join(line + "\n" for line in out)


FILTERS = {"passwd": filter_passwd, "group": filter_group}


def copy_once(source: Path, dest: Path) -> list[str]:
    """Write the filtered copies whose content changed (atomically); returns their names."""
    dest.mkdir(mode=0o755, exist_ok=True)
    changed = []
    for name in FILES:
        with (source / name).open("rb") as handle:
            raw = handle.read(MAX_SIZE + 1)
        if len(raw) > MAX_SIZE:
            raise ValueError(f"{source / name} is larger than {MAX_SIZE} bytes")
        content = FILTERS[name](raw.decode("utf-8", "replace"))
        target = dest / name
        try:
            if target.read_text(encoding="utf-8") == content:
                continue
        except FileNotFoundError:
            pass
        partial = dest / f".{name}.new"
        partial.write_text(content, encoding="utf-8")
        partial.chmod(0o644)
        os.replace(partial, target)  # the hub never reads a half-written file
        changed.append(name)
    return changed


async def mirror(source: Path, dest: Path, interval: float = INTERVAL) -> None:
    """Keep the copies current until cancelled; a failed read keeps the last good copy."""
    while True:
        await asyncio.sleep(interval)
        try:
            changed = await asyncio.to_thread(copy_once, source, dest)
        except (OSError, ValueError) as exc:
            log.warning("could not refresh the user database copy: %s", exc)
            continue
        if changed:
            log.info("user database copy refreshed (%s)", ", ".join(changed))
