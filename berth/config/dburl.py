"""Which hub database URLs Berth accepts: SQLite inside the data volume, or PostgreSQL."""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

# The hub image has psycopg 3, SQLAlchemy 2.1's default driver for postgresql://, and only it.
POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg")


def check_db_url(url: str, data_dir: str) -> None:
    """Raise ValueError (without echoing the URL, which may hold a password) if unusable."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("expected a database URL such as sqlite:////path or postgresql://...")
    if scheme == "sqlite":
        _check_sqlite(rest, data_dir)
    elif scheme in ("postgres", "postgresql+asyncpg", "postgresql+psycopg2"):
        raise ValueError(f"use the scheme postgresql:// instead of {scheme}://")
    elif scheme in POSTGRES_SCHEMES:
        parts = urlsplit(url)
        if not parts.hostname or parts.path in ("", "/"):
            raise ValueError(
                "a PostgreSQL URL needs a host and a database name: "
                "postgresql://user:password@host:5432/jupyterhub"
            )
    else:
        raise ValueError(
            f"database scheme {scheme!r} is not supported: use SQLite (the default) or "
            "postgresql://"
        )


def _check_sqlite(rest: str, data_dir: str) -> None:
    # sqlite:///relative, sqlite:////absolute, sqlite:// and sqlite:///:memory: (in memory).
    path = rest[1:] if rest.startswith("/") else rest
    path = path.split("?", 1)[0]
    if path in ("", ":memory:"):
        raise ValueError("an in-memory SQLite database loses every user at each restart")
    if not path.startswith("/"):
        raise ValueError(
            f"the SQLite file must be an absolute path in {data_dir} "
            "(sqlite:////srv/...), or it is lost when the hub is recreated"
        )
    pure = PurePosixPath(path)
    if ".." in pure.parts or not pure.is_relative_to(data_dir) or pure == PurePosixPath(data_dir):
        raise ValueError(f"the SQLite file must be inside the hub data volume, {data_dir}/")
