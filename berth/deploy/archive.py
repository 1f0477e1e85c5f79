"""The backup archive: its layout, its manifest, writing it, and verifying it (no engine here).

An archive is one tar (gzip-compressed), written with mode 600 because it holds the hub's
secrets (cookie secret, TLS key, tokens)::

    hub/database.sqlite          the hub database (SQLite's online backup), or
    hub/database.sql             a PostgreSQL hub database (pg_dump, plain SQL)
    hub/data/...                 the rest of the hub's data volume
    volumes/<volume>/...         each user volume, its root directory included
    berth-backup.json            last: {"manifest": {...}, "hmac": "..."}

The manifest names the format version, Berth's version, the deployment, each volume's labels,
and every member: type, size, sha256, numeric owner and mode. Its HMAC is keyed with a key
derived from the deployment's cookie secret, which the archive holds but an attacker who can
only edit the archive does not know for the *target* deployment: the restore checks the HMAC
with the key of the deployment it restores into, so an archive edited together with its
manifest is refused as surely as one edited alone. A foreign archive (another deployment, or a
deployment set up afresh) cannot be authenticated that way; it is refused unless the operator
says it is theirs (``--force-foreign``), and then only its internal checksums are checked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import os
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

FORMAT_VERSION = 1
MANIFEST_NAME = "berth-backup.json"
HUB_DATABASE = "hub/database.sqlite"
HUB_DATABASE_SQL = "hub/database.sql"  # a PostgreSQL hub database: pg_dump's plain SQL
HUB_DATA = "hub/data"
VOLUMES = "volumes"
SUFFIX = ".tar.gz"
COPY_CHUNK = 2**20
MEMBER_TYPES = {tarfile.DIRTYPE: "dir", tarfile.REGTYPE: "file", tarfile.SYMTYPE: "symlink"}
# The manifest, as JSON: "format", "berth_version", "created", "deployment" ({"id",
# "data_volume", "network"}), "hub" ({"database": ...} or null), "volumes" ({name: {"user",
# "labels"}}) and "entries" ({member: Entry.to_json()}). Read from an archive it is untrusted:
# its readers take it field by field, and only after its HMAC or checksums are checked.
Manifest = dict[str, Any]


class ArchiveProblem(Exception):
    """The archive cannot be used; the message says why (damaged, foreign, tampered)."""


@dataclass(frozen=True)
class Entry:
    """One member as the manifest records it (and as a verification finds it)."""

    type: str  # dir, file or symlink
    uid: int
    gid: int
    mode: int
    size: int = 0
    sha256: str = ""  # files only
    target: str = ""  # symlinks only

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value != "" or key == "type"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            type=str(data["type"]),
            uid=int(data["uid"]),
            gid=int(data["gid"]),
            mode=int(data["mode"]),
            size=int(data.get("size", 0)),
            sha256=str(data.get("sha256", "")),
            target=str(data.get("target", "")),
        )


def entry_for(info: tarfile.TarInfo, sha256: str = "") -> Entry:
    kind = MEMBER_TYPES.get(info.type)
    if kind is None:
        raise ArchiveProblem(f"{info.name}: unsupported member type {info.type!r}")
    return Entry(
        type=kind,
        uid=info.uid,
        gid=info.gid,
        mode=info.mode & 0o7777,
        size=info.size if kind == "file" else 0,
        sha256=sha256 if kind == "file" else "",
        target=info.linkname if kind == "symlink" else "",
    )


def volume_root(volume: str) -> str:
    return f"{VOLUMES}/{volume}"


def member_name(root: str, relative: str) -> str:
    """The archive name of `relative` (as the packer names it: "." is the root) under `root`."""
    relative = relative.removeprefix("./")
    return root if relative in (".", "") else f"{root}/{relative}"


def name_problem(name: str) -> str | None:
    """Why a member name is unsafe or outside the layout, or None."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name != str(path) or "\0" in name:
        return f"{name!r}: not a plain relative path"
    top = path.parts[0] if path.parts else ""
    if name in (MANIFEST_NAME, HUB_DATABASE, HUB_DATABASE_SQL):
        return None
    if top == "hub" and path.is_relative_to(HUB_DATA):
        return None
    if top == VOLUMES and len(path.parts) >= 2:
        return None
    return f"{name!r}: not part of a Berth backup's layout"


# -- deployment identity and the manifest's authentication ------------------------------------


def deployment_id(cookie_secret: bytes) -> str:
    """A stable, non-secret name for a deployment, derived from its cookie secret (made once,
    on the hub's first start, and kept in the data volume)."""
    return hashlib.sha256(b"berth-deployment-id\0" + cookie_secret.strip()).hexdigest()[:24]


def mac_key(cookie_secret: bytes) -> bytes:
    return hashlib.sha256(b"berth-backup-hmac\0" + cookie_secret.strip()).digest()


def canonical(manifest: Manifest) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def sign(manifest: Manifest, key: bytes) -> str:
    return hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()


# -- writing --------------------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """Reads through to `source`, hashing what passes."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(COPY_CHUNK):
            pass


def open_private(path: Path) -> IO[bytes]:
    """A new file readable by its owner only, from the moment it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


class ArchiveWriter:
    """Writes members and records them; `finish` appends the signed manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open_private(path)
        self.tar = tarfile.open(  # noqa: SIM115 (closed by finish or close)
            fileobj=self.handle, mode="w:gz", format=tarfile.PAX_FORMAT, compresslevel=6
        )
        self.entries: dict[str, Entry] = {}

    def add(self, name: str, info: tarfile.TarInfo, content: IO[bytes] | None = None) -> None:
        problem = name_problem(name)
        if problem:
            raise ArchiveProblem(problem)
        if name in self.entries:
            raise ArchiveProblem(f"{name!r} twice in one backup")
        copy = tarfile.TarInfo(name)
        copy.type, copy.linkname = info.type, info.linkname
        copy.uid, copy.gid, copy.mode, copy.mtime = info.uid, info.gid, info.mode, info.mtime
        copy.uname = copy.gname = ""
        entry = entry_for(info)
        if entry.type != "file":
            self.tar.addfile(copy)
            self.entries[name] = entry
            return
        copy.size = info.size
        hashing = _Hashing(content if content is not None else io.BytesIO())
        self.tar.addfile(copy, hashing)
        if hashing.count != info.size:
            raise ArchiveProblem(f"{name}: {hashing.count} bytes arrived of {info.size}")
        self.entries[name] = entry_for(info, hashing.digest.hexdigest())

    def add_bytes(self, name: str, data: bytes, uid: int, gid: int, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.uid, info.gid, info.mode = len(data), uid, gid, mode
        info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
        self.add(name, info, io.BytesIO(data))

    def finish(self, meta: dict[str, Any], key: bytes) -> Manifest:
        manifest = {
            **meta,
            "format": FORMAT_VERSION,
            "entries": {name: e.to_json() for name, e in sorted(self.entries.items())},
        }
        document = json.dumps({"manifest": manifest, "hmac": sign(manifest, key)}, indent=1)
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size, info.mode = len(document.encode()), 0o600
        info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
        self.tar.addfile(info, io.BytesIO(document.encode()))
        self.close()
        return manifest

    def close(self) -> None:
        self.tar.close()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


# -- verifying ------------------------------------------------------------------------------


def compare(expected: dict[str, Entry], found: dict[str, Entry], what: str = "") -> list[str]:
    """Every difference between the manifest's entries and what was found, one line each."""
    problems = []
    for name in sorted(expected.keys() - found.keys()):
        problems.append(f"missing{what}: {name}")
    for name in sorted(found.keys() - expected.keys()):
        problems.append(f"not in the manifest{what}: {name}")
    for name in sorted(expected.keys() & found.keys()):
        want, got = expected[name], found[name]
        if want == got:
            continue
        fields = [
            key
            for key in ("type", "size", "sha256", "target", "uid", "gid", "mode")
            if getattr(want, key) != getattr(got, key)
        ]
        problems.append(f"differs{what}: {name} ({', '.join(fields)})")
    return problems


Sink = Callable[[str, tarfile.TarInfo, IO[bytes] | None], None]


@dataclass
class Verified:
    manifest: Manifest
    entries: dict[str, Entry]
    authenticated: bool  # the HMAC was checked with the target deployment's key


def read_archive(path: Path, sink: Sink | None = None) -> tuple[Manifest, str, dict[str, Entry]]:
    """Read the whole archive once: (manifest, its hmac, entries found). `sink` sees each member
    (but the manifest) with a stream of its content. Raises ArchiveProblem when it is damaged."""
    found: dict[str, Entry] = {}
    document: bytes | None = None
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for info in tar:
                if document is not None:
                    raise ArchiveProblem(f"{info.name!r} after the manifest, which comes last")
                if info.name == MANIFEST_NAME:
                    extracted = tar.extractfile(info)
                    document = extracted.read() if extracted else b""
                    continue
                problem = name_problem(info.name)
                if problem:
                    raise ArchiveProblem(problem)
                if info.name in found:
                    raise ArchiveProblem(f"{info.name!r} appears twice")
                if not info.isfile():
                    entry_for(info)  # refuses hard links, devices, FIFOs
                    if sink:
                        sink(info.name, info, None)
                    found[info.name] = entry_for(info)
                    continue
                hashing = _Hashing(tar.extractfile(info))  # type: ignore[arg-type]
                if sink:
                    sink(info.name, info, hashing)  # type: ignore[arg-type]
                hashing.drain()
                if hashing.count != info.size:
                    raise ArchiveProblem(f"{info.name}: truncated")
                found[info.name] = entry_for(info, hashing.digest.hexdigest())
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveProblem(
            f"{path} is damaged or truncated ({exc or type(exc).__name__})"
        ) from None
    if document is None:
        raise ArchiveProblem(
            f"{path} has no {MANIFEST_NAME} at its end: it is truncated, or not a Berth backup"
        )
    try:
        wrapper = json.loads(document)
        manifest, mac = wrapper["manifest"], str(wrapper["hmac"])
        if not isinstance(manifest, dict):
            raise TypeError("manifest is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveProblem(f"{path}: the manifest is unreadable ({exc})") from None
    return manifest, mac, found


def verify(
    path: Path,
    key: bytes | None,
    deployment: str | None,
    force_foreign: bool = False,
    sink: Sink | None = None,
) -> Verified:
    """Check the whole archive before anything is restored; raise ArchiveProblem if it is
    damaged, tampered with, or (unless `force_foreign`) from another deployment."""
    manifest, mac, found = read_archive(path, sink)
    if manifest.get("format") != FORMAT_VERSION:
        raise ArchiveProblem(
            f"{path}: backup format {manifest.get('format')!r}; this Berth reads {FORMAT_VERSION}"
        )
    origin = (manifest.get("deployment") or {}).get("id")
    foreign = deployment is None or key is None or origin != deployment
    authenticated = False
    if foreign and not force_foreign:
        here = f"this deployment ({deployment})" if deployment else "no deployment here yet"
        raise ArchiveProblem(
            f"{path} is a backup of another deployment ({origin}), and {here}: refused. "
            "If it is yours (e.g. restoring onto a new machine), pass --force-foreign."
        )
    if not foreign:
        assert key is not None
        if not hmac.compare_digest(mac, sign(manifest, key)):
            raise ArchiveProblem(
                f"{path}: the manifest's signature does not match this deployment's key: it "
                "was changed after the backup was made"
            )
        authenticated = True
    try:
        expected = {name: Entry.from_json(data) for name, data in manifest["entries"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArchiveProblem(f"{path}: the manifest's entries are unreadable ({exc})") from None
    problems = compare(expected, found)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ArchiveProblem(
            f"{path} does not match its manifest (damaged or tampered with):\n  {shown}{more}"
        )
    return Verified(manifest, expected, authenticated)


def entries_under(entries: dict[str, Entry], root: str) -> dict[str, Entry]:
    return {n: e for n, e in entries.items() if n == root or n.startswith(root + "/")}


def archive_name(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"berth-backup-{now.strftime('%Y%m%dT%H%M%SZ')}{SUFFIX}"


def archives_in(directory: Path) -> list[Path]:
    """This directory's complete backups, oldest first (their names sort by time)."""
    return sorted(p for p in directory.glob(f"berth-backup-*{SUFFIX}") if p.is_file())


def to_prune(archives: Iterable[Path], keep: int) -> list[Path]:
    """The oldest archives beyond the newest `keep`."""
    ordered = sorted(archives)
    return ordered[: max(0, len(ordered) - keep)]
