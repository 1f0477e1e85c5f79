"""Runs inside a short-lived helper container (the hub image): pack a volume, copy a live SQLite
database, empty a volume. Standard library only.

    python3 -m berth.deploy.volumetar pack SRC OUT [--exclude REL ...]
    python3 -m berth.deploy.volumetar sqlite DB OUT
    python3 -m berth.deploy.volumetar wipe DIR

`pack` writes a tar whose every header matches the bytes that follow it, even while a user's
kernel writes into the volume: each regular file is read once, to its end, into a spooled copy,
and its header gets the size actually read. (The engine's own archive endpoint stats a file
and then copies it, and a file that grows or shrinks in between can break its tar stream.) A file
deleted between the directory listing and its opening is left out, as if the listing had come
a moment later. Owners are numeric only (no user names), modes are kept. Sockets, FIFOs and
device files are skipped (a notebook volume has no use for them) and named on stderr.

`sqlite` uses SQLite's online backup: it copies the database under a shared lock, so the copy
is a state the hub committed, whatever the hub writes meanwhile (locks are per file, and the
volume is the same file for the hub's container and this one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import stat
import sys
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import quote

SPOOL_IN_MEMORY = 16 * 2**20  # larger files spill to the helper's /tmp


COPY_ATTEMPTS = 5


def _unchanged(before: os.stat_result, after: os.stat_result) -> bool:
    fields = ("st_size", "st_mtime_ns", "st_ctime_ns")
    return all(getattr(before, f) == getattr(after, f) for f in fields)


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    return info


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return  # deleted since the listing
    with os.fdopen(fd, "rb") as handle, tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as copy:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):  # replaced by something else since the listing
            return
        # A file rewritten in place while it is copied (truncated, then written) would give a
        # copy that starts with one write and ends with the next: copied again while its size,
        # mtime or ctime moved during the copy, a bounded number of times (the last copy is
        # kept then: still a valid member, its size being the bytes read).
        for attempt in range(COPY_ATTEMPTS):
            if attempt:
                handle.seek(0)
                copy.seek(0)
                copy.truncate()
            shutil.copyfileobj(handle, copy, 2**20)
            after = os.fstat(handle.fileno())
            if _unchanged(st, after) and copy.tell() == after.st_size:
                break
            st = after
        info = _info(name, st)
        info.size = copy.tell()
        copy.seek(0)
        tar.addfile(info, copy)


def pack(src: Path, out: Path, exclude: set[str]) -> None:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        root = _info(".", os.lstat(src))
        root.type = tarfile.DIRTYPE
        tar.addfile(root)
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            base = Path(dirpath)
            for entry in sorted(dirnames + filenames):
                path = base / entry
                name = str(path.relative_to(src))
                if name in exclude:
                    if entry in dirnames:
                        dirnames.remove(entry)
                    continue
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    info = _info(name, st)
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    info = _info(name, st)
                    info.type = tarfile.SYMTYPE
                    try:
                        info.linkname = os.readlink(path)
                    except FileNotFoundError:
                        continue
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    _add_file(tar, path, name)
                else:
                    print(f"skipped (not a file, directory or link): {name}", file=sys.stderr)


def sqlite_copy(database: Path, out: Path) -> None:
    if not database.is_file():
        raise SystemExit(f"no database file at {database}")
    # mode=ro: the backup never writes to the live database, not even to recover a journal.
    source = sqlite3.connect(f"file:{quote(str(database))}?mode=ro", uri=True)
    target = sqlite3.connect(out)
    try:
        source.backup(target)  # all pages in one step: one consistent snapshot
    finally:
        target.close()
        source.close()
    os.chmod(out, 0o600)


def wipe(directory: Path) -> None:
    """Remove everything inside `directory` (not the directory: it is a volume's root)."""
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="berth-volumetar")
    sub = parser.add_subparsers(dest="op", required=True)
    packer = sub.add_parser("pack")
    packer.add_argument("src", type=Path)
    packer.add_argument("out", type=Path)
    packer.add_argument("--exclude", action="append", default=[])
    copier = sub.add_parser("sqlite")
    copier.add_argument("database", type=Path)
    copier.add_argument("out", type=Path)
    sub.add_parser("wipe").add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    os.umask(0o077)  # what the helper writes (copies of secrets, the database) is private
    try:
        if args.op == "pack":
            args.out.parent.mkdir(parents=True, exist_ok=True)
            pack(args.src, args.out, set(args.exclude))
        elif args.op == "sqlite":
            args.out.parent.mkdir(parents=True, exist_ok=True)
            sqlite_copy(args.database, args.out)
        else:
            wipe(args.directory)
    except (OSError, sqlite3.Error) as exc:
        print(f"{args.op} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
