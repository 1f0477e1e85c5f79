"""The pyproject.toml written for a hub image built from a wheel install (images/project.py)."""

from __future__ import annotations

import os
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from berth.images import project


def test_the_written_pyproject_is_in_a_directory_no_one_else_can_write(tmp_path, monkeypatch):
    """Another local user who made the old fixed directory (/tmp/berth-project-VERSION) first
    could swap the file between its write and the image build, and so run a build backend of
    theirs in the hub image's build. Before this change written_pyproject() used that directory
    as it found it; now it is a fresh directory of its own, mode 700."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    project._private_directory.cache_clear()
    planted = tmp_path / f"berth-project-{metadata.version(project.DISTRIBUTION)}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    (planted / "pyproject.toml").write_text('[build-system]\nbuild-backend = "theirs"\n')
    try:
        written = project.written_pyproject()
        assert written.parent != planted and written.parent.parent == tmp_path
        info = written.parent.stat()
        assert (info.st_mode & 0o777, info.st_uid) == (0o700, os.getuid())
        found = tomllib.loads(written.read_text())
        assert found["build-system"]["build-backend"] == "setuptools.build_meta"
        assert found["project"]["name"] == project.DISTRIBUTION
        assert project.written_pyproject() == written  # one directory per process
    finally:
        project._private_directory.cache_clear()
    assert isinstance(written, Path)
