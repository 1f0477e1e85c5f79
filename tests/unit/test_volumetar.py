"""The helper that packs a volume (berth/deploy/volumetar.py), run here on a plain directory."""

from __future__ import annotations

import os
import sqlite3
import tarfile
import threading
from pathlib import Path

from berth.deploy import volumetar


def test_a_file_rewritten_during_the_pack_never_breaks_the_tar(tmp_path: Path):
    """A writer changes the file's size all the time; every pack is a valid tar whose member
    holds exactly the bytes its header announces, all from one write."""
    src = tmp_path / "volume"
    src.mkdir()
    target = src / "counter.txt"
    target.write_text("0")
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            target.write_text(str(i % 10) * (i % 50000))
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for round_ in range(30):
            out = tmp_path / f"out{round_}.tar"
            volumetar.pack(src, out, set())
            with tarfile.open(out) as tar:
                member = tar.getmember("counter.txt")
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                assert len(data) == member.size
                assert data == data[:1] * len(data)  # one digit repeated: no mix of two writes
    finally:
        stop.set()
        writer.join()


def test_pack_keeps_owners_modes_links_and_skips_what_is_excluded(tmp_path: Path):
    src = tmp_path / "volume"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a")
    (src / "secret").write_text("s")
    os.chmod(src / "secret", 0o600)
    os.chmod(src / "sub", 0o751)
    (src / "link").symlink_to("sub/a.txt")
    (src / "jupyterhub.sqlite").write_text("db")
    (src / "jupyterhub.sqlite-journal").write_text("j")
    os.mkfifo(src / "fifo")
    out = tmp_path / "out.tar"
    volumetar.pack(src, out, {"jupyterhub.sqlite", "jupyterhub.sqlite-journal"})
    with tarfile.open(out) as tar:
        found = {m.name: (m.type, m.mode, m.uid, m.linkname, m.uname) for m in tar.getmembers()}
    uid = os.getuid()
    assert found == {
        ".": (tarfile.DIRTYPE, 0o755, uid, "", ""),
        "link": (tarfile.SYMTYPE, 0o777, uid, "sub/a.txt", ""),
        "secret": (tarfile.REGTYPE, 0o600, uid, "", ""),
        "sub": (tarfile.DIRTYPE, 0o751, uid, "", ""),
        "sub/a.txt": (tarfile.REGTYPE, 0o644, uid, "", ""),
    }


def test_sqlite_copy_is_a_committed_state_while_a_transaction_is_open(tmp_path: Path):
    db = tmp_path / "hub.sqlite"
    live = sqlite3.connect(db)
    live.execute("create table users (name text)")
    live.execute("insert into users values ('alice')")
    live.commit()
    live.execute("insert into users values ('not-yet-committed')")  # open write transaction
    out = tmp_path / "copy.sqlite"
    volumetar.sqlite_copy(db, out)
    live.rollback()
    live.close()
    copy = sqlite3.connect(out)
    assert copy.execute("select name from users").fetchall() == [("alice",)]
    copy.close()
    assert (out.stat().st_mode & 0o777) == 0o600


def test_a_file_that_never_settles_is_still_packed_whole(tmp_path: Path, monkeypatch):
    """Every attempt sees the file change (a stat that never matches): the last copy is kept,
    with its bytes, not an empty member."""
    src = tmp_path / "volume"
    src.mkdir()
    (src / "busy.txt").write_text("x" * 1000)
    monkeypatch.setattr(volumetar, "_unchanged", lambda before, after: False)
    out = tmp_path / "out.tar"
    volumetar.pack(src, out, set())
    with tarfile.open(out) as tar:
        member = tar.getmember("busy.txt")
        assert member.size == 1000
        assert tar.extractfile(member).read() == b"x" * 1000  # type: ignore[union-attr]
