"""berth.private_files: a secret's file is its owner's only and is replaced whole."""

from __future__ import annotations

import stat
from pathlib import Path

from berth.private_files import write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_and_its_directory_are_the_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "cookie_secret"
    write_private(path, b"s3cret")
    assert path.read_bytes() == b"s3cret"
    assert (mode(path), mode(path.parent)) == (0o600, 0o700)
    assert sorted(p.name for p in path.parent.iterdir()) == ["cookie_secret"]


def test_a_wider_file_is_replaced_by_one_of_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert (path.read_bytes(), mode(path)) == (b"new", 0o600)


def test_a_reader_of_the_old_file_never_sees_part_of_the_new(tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    write_private(path, b"old certificate")
    with path.open("rb") as reader:  # opened before the replacement, as the proxy may be
        write_private(path, b"new")
        assert reader.read() == b"old certificate"
    assert path.read_bytes() == b"new"


def test_a_partial_file_left_by_a_crash_is_not_kept(tmp_path: Path) -> None:
    leftover = tmp_path / ".token.partial"
    leftover.write_bytes(b"half")
    leftover.chmod(0o666)
    write_private(tmp_path / "token", b"whole")
    assert not leftover.exists()
    assert mode(tmp_path / "token") == 0o600
