"""Runs inside a short-lived helper container of the hub image (or in the hub's entry): check,
dump and load the hub's PostgreSQL database. Standard library only, plus the hub image's
psycopg (3) for the check and Debian's PostgreSQL client (pg_dump, psql) for dump and load.

    python3 pgtool.py check URLFILE
    python3 pgtool.py dump URLFILE OUT
    python3 pgtool.py load URLFILE IN

The database URL (it holds the password) is read from a file, never from the command line or
the environment of the container, which `docker inspect` would show. pg_dump and psql get it
as libpq's environment variables of their own process only.

Every failure ends in ONE line on stderr, ``berth: error: …``, that says in plain words what
is wrong and what to do (:func:`explain`), and exit status 78 (EX_CONFIG) for a database that
cannot be reached or refused us, 1 for anything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

EXIT_UNREACHABLE = 78
ERROR_PREFIX = "berth: error: "
CONNECT_TIMEOUT = 10  # seconds, per attempt
# Plain SQL: readable, and a second dump of the restored database can be compared with the
# first. --clean/--if-exists make the file replace what is there; no owners or grants, so it
# loads into a database owned by another role (a new server).
DUMP_OPTIONS = ("--format=plain", "--clean", "--if-exists", "--no-owner", "--no-privileges")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def where(self) -> str:
        return f"{self.database} on {self.host}:{self.port} as {self.user}"


def parse_url(url: str) -> Target:
    parts = urlsplit(url.strip())
    return Target(
        host=parts.hostname or "localhost",
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")),
    )


# What libpq and the server say, and what it means for the person who wrote berth.yaml.
_EXPLANATIONS = (
    (
        ("password authentication failed", "no password supplied", "authentication failed"),
        "PostgreSQL refused the password for the user {user}",
        "correct the password in hub.db_url (berth.yaml)",
    ),
    (
        ("could not translate host name", "name or service not known", "temporary failure in name"),
        "the database host {host} has no address (the name does not resolve from the hub)",
        "check the host name in hub.db_url; a database container must be on the hub's network "
        "(docker network connect NETWORK CONTAINER)",
    ),
    (
        ("connection refused",),
        "nothing accepts connections on {host}:{port}",
        "start PostgreSQL, or check the host and port in hub.db_url",
    ),
    (
        ("timeout expired", "timed out", "no route to host", "network is unreachable"),
        "{host}:{port} did not answer",
        "check that the hub's network can reach it (a firewall, or a server that is down)",
    ),
    (
        ("does not exist",),
        "{detail}",
        "create it (createdb / CREATE ROLE), or correct hub.db_url",
    ),
    (
        ("no pg_hba.conf entry",),
        "PostgreSQL does not accept connections from the hub's address ({detail})",
        "add a host line for the hub's network to pg_hba.conf",
    ),
    (
        ("server version mismatch",),
        "pg_dump in the hub image is older than the server ({detail})",
        "back up with the server's own pg_dump, or use a server of the client's major version",
    ),
    (
        ("permission denied",),
        "the user {user} may not do this: {detail}",
        "grant the hub's user ownership of its database",
    ),
)


def explain(message: str, target: Target) -> str:
    """One plain sentence (what is wrong; the fix) for a libpq or server error message."""
    detail = " ".join(message.strip().splitlines()[-1:]).strip() or "no message"
    for line in message.strip().splitlines():
        at = max(line.find("FATAL:"), line.find("ERROR:"), line.find("pg_dump: error:"))
        if at >= 0:
            detail = " ".join(line[at:].split())
            break
    lowered = message.lower()
    for needles, what, fix in _EXPLANATIONS:
        if any(needle in lowered for needle in needles):
            fields = {"user": target.user, "host": target.host, "port": target.port}
            what = what.format(detail=detail, **fields)
            return f"the hub database ({target.where}): {what}; {fix}"
    return f"the hub database ({target.where}): {detail}"


def _fail(message: str, target: Target, status: int) -> None:
    print(ERROR_PREFIX + explain(message, target), file=sys.stderr)
    sys.exit(status)


def check(target: Target) -> None:
    """Connect and run one query, or exit with one plain line."""
    try:
        import psycopg  # the hub image's driver (berth/images/stack/hub/requirements.txt)
    except ImportError:
        print(ERROR_PREFIX + "the hub image has no PostgreSQL driver (psycopg)", file=sys.stderr)
        sys.exit(1)
    try:
        connection = psycopg.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            dbname=target.database,
            connect_timeout=CONNECT_TIMEOUT,
        )
    except psycopg.Error as exc:
        _fail(str(exc), target, EXIT_UNREACHABLE)
    try:
        connection.execute("SELECT 1")
    except psycopg.Error as exc:
        _fail(str(exc), target, EXIT_UNREACHABLE)
    finally:
        connection.close()


def _environment(target: Target) -> dict[str, str]:
    return {
        **os.environ,
        "PGHOST": target.host,
        "PGPORT": str(target.port),
        "PGUSER": target.user,
        "PGPASSWORD": target.password,
        "PGDATABASE": target.database,
        "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
    }


def _run(command: list[str], target: Target) -> None:
    try:
        result = subprocess.run(
            command, env=_environment(target), capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        print(
            ERROR_PREFIX + f"{command[0]} is not in the hub image (rebuild it: berth images "
            "build hub)",
            file=sys.stderr,
        )
        sys.exit(1)
    if result.returncode != 0:
        unreachable = "connection to server" in result.stderr or "could not" in result.stderr
        _fail(result.stderr, target, EXIT_UNREACHABLE if unreachable else 1)


def dump(target: Target, out: str) -> None:
    """pg_dump of the whole database as plain SQL: one consistent snapshot (pg_dump reads in
    one repeatable-read transaction), whatever the hub writes meanwhile. The file is made mode
    600 before pg_dump writes into it (pg_dump would make it with the umask's mode, readable by
    others until the chmod after)."""
    os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(out, 0o600)  # a file that was there already keeps its mode through os.open
    _run(["pg_dump", *DUMP_OPTIONS, f"--file={out}"], target)


def load(target: Target, source: str) -> None:
    """Replace the database's contents with a dump, in one transaction (all or nothing)."""
    command = ["psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction"]
    _run([*command, f"--file={source}"], target)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in ("check", "dump", "load"):
        print("usage: pgtool.py check|dump|load URLFILE [FILE]", file=sys.stderr)
        sys.exit(2)
    with open(argv[1], encoding="utf-8") as handle:
        target = parse_url(handle.read())
    if argv[0] == "check":
        check(target)
    elif argv[0] == "dump":
        dump(target, argv[2])
    else:
        load(target, argv[2])


if __name__ == "__main__":
    main(sys.argv[1:])
