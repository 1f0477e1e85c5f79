"""The PostgreSQL helpers' pure parts: URL parsing, the plain-words explanations of libpq's
errors, the dump digest that a restore compares, and the schemes the hub image can serve."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from berth.config.dburl import POSTGRES_SCHEMES
from berth.deploy import pgio, pgtool
from berth.deploy.pgtool import Target, explain, parse_url

TARGET = Target("berth-pg", 5432, "hub", "s3cret", "jupyterhub")
WHERE = "the hub database (jupyterhub on berth-pg:5432 as hub): "


def test_parse_url_unquotes_and_defaults():
    assert parse_url("postgresql://hub:p%40ss%2Fw@db/jupyter%20hub\n") == Target(
        "db", 5432, "hub", "p@ss/w", "jupyter hub"
    )
    assert parse_url("postgresql+psycopg://u@h:6543/d") == Target("h", 6543, "u", "", "d")


# What libpq 15 and PostgreSQL 15 print, as psycopg2 and pg_dump pass it on.
@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            'connection to server at "berth-pg" (172.30.128.2), port 5432 failed: FATAL:  '
            'password authentication failed for user "hub"\n',
            "PostgreSQL refused the password for the user hub; correct the password in "
            "hub.db_url (berth.yaml)",
        ),
        (
            'could not translate host name "berth-pg" to address: Name or service not known\n',
            "the database host berth-pg has no address (the name does not resolve from the "
            "hub); check the host name in hub.db_url; a database container must be on the "
            "hub's network (docker network connect NETWORK CONTAINER)",
        ),
        (
            'connection to server at "berth-pg" (172.30.128.2), port 5432 failed: Connection '
            "refused\n\tIs the server running on that host and accepting TCP/IP connections?\n",
            "nothing accepts connections on berth-pg:5432; start PostgreSQL, or check the host "
            "and port in hub.db_url",
        ),
        (
            'connection to server at "berth-pg" (172.30.128.2), port 5432 failed: timeout '
            "expired\n",
            "berth-pg:5432 did not answer; check that the hub's network can reach it (a "
            "firewall, or a server that is down)",
        ),
        (
            'connection to server at "berth-pg", port 5432 failed: FATAL:  database '
            '"jupyterhub" does not exist\n',
            'FATAL: database "jupyterhub" does not exist; create it (createdb / CREATE ROLE), '
            "or correct hub.db_url",
        ),
        (
            "pg_dump: error: aborting because of server version mismatch\n"
            "pg_dump: detail: server version: 16.4; pg_dump version: 15.14\n",
            "pg_dump in the hub image is older than the server (pg_dump: error: aborting "
            "because of server version mismatch); back up with the server's own pg_dump, or "
            "use a server of the client's major version",
        ),
        ("something new\nand odd\n", "and odd"),
    ],
)
def test_explain_says_what_and_the_fix_in_one_line(message, expected):
    explained = explain(message, TARGET)
    assert explained == WHERE + expected
    assert "\n" not in explained


def test_dump_digest_ignores_what_differs_between_two_dumps_of_the_same_data():
    first = [
        b"--\n", b"-- Dumped from database version 15.8\n", b"\\restrict Abc123\n", b"\n",
        b"CREATE TABLE public.users (id integer);\n", b"COPY public.users (id) FROM stdin;\n",
        b"1\n", b"\\.\n", b"\\unrestrict Abc123\n",
    ]  # fmt: skip
    second = [
        b"-- Dumped from database version 15.9\n", b"\\restrict Zyx987\n",
        b"CREATE TABLE public.users (id integer);\n", b"COPY public.users (id) FROM stdin;\n",
        b"1\n", b"\\.\n", b"\\unrestrict Zyx987\n", b"\n",
    ]  # fmt: skip
    changed = [line.replace(b"1\n", b"2\n") for line in second]
    assert pgio.dump_digest(iter(first)) == pgio.dump_digest(iter(second))
    assert pgio.dump_digest(iter(first)) != pgio.dump_digest(iter(changed))


def test_last_error_is_the_tools_one_line():
    log = b"Traceback...\nberth: error: the hub database (x): refused; fix it\n"
    assert pgio.last_error(log, "the check") == "the hub database (x): refused; fix it"
    assert pgio.last_error(b"boom\n", "the check") == "the check failed: boom"


def test_every_accepted_scheme_has_its_driver_in_the_hub_image():
    requirements = Path("berth/images/stack/hub/requirements.txt").read_text()
    drivers = {"postgresql": "psycopg", "postgresql+psycopg": "psycopg"}
    assert set(POSTGRES_SCHEMES) == set(drivers)
    for scheme in POSTGRES_SCHEMES:
        assert re.search(rf"^{drivers[scheme]}==", requirements, re.M), scheme
        assert re.search(rf"^{drivers[scheme]}-binary==", requirements, re.M), scheme


def test_the_hub_image_has_pg_dump_and_psql():
    dockerfile = Path("berth/images/stack/hub/Dockerfile").read_text()
    install = re.search(r"apt-get install [^\n]*\\\n((?:[^\n]*\\\n)*[^\n]*)", dockerfile)
    assert install and re.search(r"\bpostgresql-client\b", install.group(1))


def test_the_hub_entry_reads_the_url_jupyterhub_will_use(tmp_path):
    """berth.deploy.hubinit checks the database JupyterHub is configured with, secret included."""
    from berth.config.render import SecretFile, render_config_py
    from berth.deploy.hubinit import configured_db_url

    secret = tmp_path / "db_url"
    secret.write_text("postgresql://hub:pw@berth-pg:5432/jupyterhub\n")
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(render_config_py({"JupyterHub": {"db_url": SecretFile(str(secret))}}))
    assert configured_db_url(str(config)) == "postgresql://hub:pw@berth-pg:5432/jupyterhub"
    config.write_text(render_config_py({"JupyterHub": {"ip": "0.0.0.0"}}))
    assert configured_db_url(str(config)) == ""


def test_a_dump_is_mode_600_before_pg_dump_writes_a_byte(tmp_path, monkeypatch):
    """The database's contents (password hashes, tokens) never sit in a file others may read:
    before this change pg_dump made the file with the umask's mode (644), chmod came after."""
    modes: list[int] = []

    def pg_dump(command, **kwargs):
        out = Path(next(arg for arg in command if arg.startswith("--file=")).split("=", 1)[1])
        modes.append(out.stat().st_mode & 0o777)
        out.write_text("-- dump\n")  # as pg_dump does: truncate and write, the mode kept
        assert kwargs["env"]["PGPASSWORD"] == "s3cret"
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(pgtool.subprocess, "run", pg_dump)
    old = os.umask(0o022)
    try:
        for out in (tmp_path / "new.sql", tmp_path / "was-there.sql"):
            if out.name == "was-there.sql":
                out.write_text("older, readable by all")
                out.chmod(0o644)
            pgtool.dump(TARGET, str(out))
            assert out.stat().st_mode & 0o777 == 0o600
            assert out.read_text() == "-- dump\n"
    finally:
        os.umask(old)
    assert modes == [0o600, 0o600]
