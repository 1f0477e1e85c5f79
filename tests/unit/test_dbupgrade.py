"""berth/deploy/dbupgrade.py's pure parts: the schema revisions read from JupyterHub's migration
scripts (the same as Alembic's own loader finds), a SQLite database's revision, the backup."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import jupyterhub
import pytest
from alembic.script import ScriptDirectory

from berth.deploy import dbupgrade


def test_revisions_are_alembics():
    scripts = ScriptDirectory(str(Path(jupyterhub.__file__).parent / "alembic"))
    expected = (scripts.get_current_head(), {s.revision for s in scripts.walk_revisions()})
    assert dbupgrade.schema_revisions() == expected


def stamped(path: Path, revision: str | None) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
        db.execute("INSERT INTO users VALUES (7)")
        if revision is not None:
            db.execute("CREATE TABLE alembic_version (version_num TEXT)")
            db.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    db.close()
    return f"sqlite:///{path}"


def test_database_revision(tmp_path: Path):
    assert dbupgrade.database_revision(f"sqlite:///{tmp_path}/missing.sqlite") is None
    assert not (tmp_path / "missing.sqlite").exists()  # looking made no file
    assert dbupgrade.database_revision(stamped(tmp_path / "bare.sqlite", None)) is None
    assert dbupgrade.database_revision(stamped(tmp_path / "hub.sqlite", "abc123")) == "abc123"


def test_current_and_missing_databases_are_left_alone(tmp_path: Path):
    head, _ = dbupgrade.schema_revisions()
    url = stamped(tmp_path / "hub.sqlite", head)
    for db_url in (url, f"sqlite:///{tmp_path}/none.sqlite"):
        assert dbupgrade.upgrade("unused.py", db_url, tmp_path / "b") == (
            "the hub database's schema is current"
        )
    assert not (tmp_path / "b").exists()


def test_an_unknown_revision_is_refused_untouched(tmp_path: Path):
    url = stamped(tmp_path / "hub.sqlite", "fromthefuture")
    with pytest.raises(dbupgrade.UpgradeRefused, match="migrated by a newer JupyterHub"):
        dbupgrade.upgrade("unused.py", url, tmp_path / "b")
    assert dbupgrade.database_revision(url) == "fromthefuture"
    assert not (tmp_path / "b").exists()


def test_backup_is_a_private_copy_named_after_its_revision(tmp_path: Path):
    url = stamped(tmp_path / "hub.sqlite", "abc123")
    copy = dbupgrade.backup(url, "abc123", tmp_path / "db-backups")
    assert copy.name.startswith("jupyterhub-abc123-") and copy.suffix == ".sqlite"
    assert (copy.stat().st_mode & 0o777, copy.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT id FROM users").fetchall() == [(7,)]
    db.close()


def test_a_config_without_db_url_reads_jupyterhubs_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Before this change `run` passed "" as the URL and crashed (bench/hub_memory.py on main);
    JupyterHub itself then uses sqlite:///jupyterhub.sqlite in its working directory."""
    config = tmp_path / "jupyterhub_config.py"
    config.write_text("c.JupyterHub.ip = '127.0.0.1'\n")
    monkeypatch.chdir(tmp_path)
    stamped(tmp_path / "jupyterhub.sqlite", "fromthefuture")
    with pytest.raises(SystemExit):
        dbupgrade.run(str(config), tmp_path / "b")
    assert "migrated by a newer JupyterHub (schema fromthefuture)" in capsys.readouterr().err
