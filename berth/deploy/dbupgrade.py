"""The hub database across JupyterHub releases: backed up, then migrated with JupyterHub's own
upgrade path, before the hub starts (run by berth.deploy.hubinit in the new hub container, after
`berth up` has stopped the old hub, so nothing writes the database meanwhile).

The database's schema revision (Alembic's ``alembic_version``) is compared with the newest one
this JupyterHub knows:

- no database yet, or already at that revision: nothing to do;
- an older revision: a copy goes to ``db-backups/`` in the hub's data volume first (SQLite's
  online backup, or ``pg_dump`` for PostgreSQL), named after the revision it holds, mode 600;
  then ``jupyterhub upgrade-db`` migrates it (for SQLite, JupyterHub keeps a copy of its own
  beside the database too);
- a revision this JupyterHub does not know (a newer JupyterHub migrated it): refused with one
  line saying what to do, since the hub would refuse to start anyway.

    python3 -m berth.deploy.dbupgrade CONFIG [BACKUP_DIR]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import os
import re
import sqlite3
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from berth.deploy import pgtool

ERROR_PREFIX = pgtool.ERROR_PREFIX
BACKUP_DIR = "db-backups"  # beside the database, in the hub's data volume


class UpgradeRefused(Exception):
    """The database cannot be used by this JupyterHub; the message says what to do."""


# In each of JupyterHub's migration scripts: `revision = "…"` and `down_revision = "…"` (or None).
_REVISION = re.compile(r"""^(down_revision|revision)\s*=\s*['"]?([0-9a-zA-Z_]+)['"]?""", re.M)


def schema_revisions() -> tuple[str, set[str]]:
    """This JupyterHub's newest schema revision and every revision it can migrate from, read
    from its migration scripts (Alembic's own loader takes over a second: every hub start runs
    this)."""
    spec = importlib.util.find_spec("jupyterhub")
    assert spec is not None and spec.origin is not None
    known, parents = set(), set()
    for script in (Path(spec.origin).parent / "alembic" / "versions").glob("*.py"):
        fields = dict(
            (key, value) for key, value in _REVISION.findall(script.read_text(encoding="utf-8"))
        )
        if "revision" in fields:
            known.add(fields["revision"])
            parents.add(fields.get("down_revision", "None"))
    heads = known - parents
    if len(heads) != 1:
        raise UpgradeRefused(f"JupyterHub's migration scripts have {len(heads)} heads: {heads}")
    return heads.pop(), known


def database_revision(db_url: str) -> str | None:
    """The schema revision stamped in the database; None when there is no database yet."""
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        if not path.exists():
            return None
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "alembic_version" not in tables:
                return None  # empty: JupyterHub stamps it at start
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url)
    try:
        if "alembic_version" not in inspect(engine).get_table_names():
            return None
        with engine.connect() as connection:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if found is None else str(found[0])
    finally:
        engine.dispose()


def backup(db_url: str, revision: str, directory: Path) -> Path:
    """A consistent copy of the database, mode 600, named after its schema revision."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if db_url.startswith("sqlite:///"):
        target = directory / f"jupyterhub-{revision}-{stamp}.sqlite"
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        source = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return target
    if db_url.startswith("postgresql"):
        target = directory / f"jupyterhub-{revision}-{stamp}.sql"
        pgtool.dump(pgtool.parse_url(db_url), str(target))
        return target
    raise UpgradeRefused(
        f"the hub database ({db_url.split(':', 1)[0]}) needs a schema upgrade and Berth can "
        "back up only SQLite and PostgreSQL: back it up, then run `jupyterhub upgrade-db`"
    )


JUPYTERHUB_DEFAULT_DB_URL = "sqlite:///jupyterhub.sqlite"


def upgrade(config_file: str, db_url: str, backups: Path) -> str:
    """Back up and migrate the database if its schema is older than this JupyterHub's.
    Returns what was done, in one line for the hub's log."""
    release = version("jupyterhub")
    head, known = schema_revisions()
    revision = database_revision(db_url)
    if revision is None or revision == head:
        return "the hub database's schema is current"
    if revision not in known:
        raise UpgradeRefused(
            f"the hub database was migrated by a newer JupyterHub (schema {revision}) than this "
            f"hub image's ({release}): run the newer Berth again, or restore "
            f"the copy made before that upgrade (in {backups} of the hub's data volume)"
        )
    copy = backup(db_url, revision, backups)
    print(f"berth: backed up the hub database (schema {revision}) to {copy}", file=sys.stderr)
    # `alembic`, which upgrade-db runs, is installed beside this Python.
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "upgrade-db", "-f", config_file],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 or database_revision(db_url) != head:
        sys.stderr.write(done.stdout + done.stderr)
        raise UpgradeRefused(
            f"`jupyterhub upgrade-db` could not migrate the hub database to JupyterHub "
            f"{release}'s schema (its output is above); the copy from before "
            f"is {copy}"
        )
    return f"migrated the hub database from schema {revision} to {head} (JupyterHub "\
        f"{release}); the copy from before is {copy}"  # fmt: skip


def run(config_file: str, backups: Path) -> None:
    """Upgrade as the hub's entry does: one line on stderr either way; exit 1 when refused."""
    from berth.deploy.hubinit import configured_db_url

    # A config without db_url gets JupyterHub's own default (relative to the working directory).
    db_url = configured_db_url(config_file) or JUPYTERHUB_DEFAULT_DB_URL
    try:
        print("berth: " + upgrade(config_file, db_url, backups),
              file=sys.stderr)  # fmt: skip
    except UpgradeRefused as refused:
        print(ERROR_PREFIX + str(refused), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python3 -m berth.deploy.dbupgrade CONFIG [BACKUP_DIR]")
    run(sys.argv[1], Path(sys.argv[2] if len(sys.argv) == 3 else BACKUP_DIR))
