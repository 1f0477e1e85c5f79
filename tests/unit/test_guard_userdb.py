"""The hub's copy of the host's user database, kept by the engine guard (berth/guard/userdb.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from berth.guard.userdb import copy_once, filter_group, filter_passwd, mirror

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "ada:$6$hash$secret:1001:1001:Ada Lovelace,room 4,555-1234:/home/ada:/bin/bash\n"
    "+nisuser::::::\n"
    "broken:x:notanumber:1:::/bin/sh\n"
    "short:x:1\n"
)
GROUP = "root:x:0:\nstaff:!:50:ada,bob\n+nisgroup\n"


def test_only_names_ids_homes_and_members_are_kept() -> None:
    """No password field (old systems keep hashes there), no GECOS, no shell, no NIS lines."""
    assert filter_passwd(PASSWD) == "root:x:0:0::/root:\nada:x:1001:1001::/home/ada:\n"
    assert filter_group(GROUP) == "root:x:0:\nstaff:x:50:ada,bob\n"


def test_the_copy_follows_a_file_replaced_by_rename(tmp_path: Path) -> None:
    """useradd writes a new /etc/passwd and renames it over the old one: a file bind mount
    would keep showing the old file; the copy must show the new one."""
    etc, dest = tmp_path / "etc", tmp_path / "userdb"
    etc.mkdir()
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    assert copy_once(etc, dest) == ["passwd", "group"]
    assert copy_once(etc, dest) == []  # unchanged: nothing rewritten
    assert oct((dest / "passwd").stat().st_mode & 0o777) == "0o644"
    new = etc / "passwd+"
    new.write_text(PASSWD + "bob:x:1002:1002::/home/bob:/bin/bash\n")
    os.replace(new, etc / "passwd")

    async def one_round() -> None:
        task = asyncio.ensure_future(mirror(etc, dest, interval=0.01))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if "bob:" in (dest / "passwd").read_text():
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(one_round())
    assert (dest / "passwd").read_text().endswith("bob:x:1002:1002::/home/bob:\n")
    assert sorted(p.name for p in dest.iterdir()) == ["group", "passwd"]
