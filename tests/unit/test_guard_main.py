"""`python -m berth.guard`'s command line: the interface `berth up` starts the guard with."""

from __future__ import annotations

import pytest

from berth.guard.__main__ import limits_from, parse_args
from berth.guard.bodies import Limits

DB = ["--user-db-from", "/etc", "--user-db-to", "/tmp/userdb"]


def test_the_documented_command_line_parses() -> None:
    args = parse_args(
        [
            "--socket", "/run/berth-engine/docker.sock",
            "--upstream", "unix:///var/run/docker.sock",
            "--prefix", "berth",
            "--allow-bind", "/srv/shared", "--allow-bind", "/data",
            "--network", "berth", "--network", "bridge",
            "--home-root", "/home",
            "--user-db-from", "/srv/berth/host-etc", "--user-db-to", "/run/berth-engine/userdb",
        ]
    )  # fmt: skip
    assert vars(args) == {
        "socket": "/run/berth-engine/docker.sock",
        "upstream": "unix:///var/run/docker.sock",
        "prefix": "berth",
        "allow_bind": ["/srv/shared", "/data"],
        "network": ["berth", "bridge"],
        "home_root": ["/home"],
        "user_db_from": "/srv/berth/host-etc",
        "user_db_to": "/run/berth-engine/userdb",
        "debug": False,
    }
    assert limits_from(args) == Limits(
        "berth",
        allow_binds=("/srv/shared", "/data"),
        networks=("berth", "bridge"),
        home_roots=("/home",),
        user_db="/srv/berth/host-etc",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--socket", "/s"], "the following arguments are required: --prefix"),
        (["--socket", "/s", "--prefix", " "], "--prefix must not be empty"),
        (
            ["--socket", "/s", "--prefix", "b", "--allow-bind", "srv"],
            "--allow-bind needs an absolute host path, not 'srv'",
        ),
        (
            ["--socket", "/s", "--prefix", "b", "--home-root", "/", *DB],
            "--home-root: '/' holds the system's own directories, not only homes",
        ),
        (
            ["--socket", "/s", "--prefix", "b", "--home-root", "/etc", *DB],
            "--home-root: '/etc' is (or lies inside) the system directory /etc",
        ),
        (
            ["--socket", "/s", "--prefix", "b", "--home-root", "/var/run", *DB],
            "--home-root: '/var/run' is (or lies inside) the system directory /var/run",
        ),
        (
            ["--socket", "/s", "--prefix", "b", "--home-root", "/home/", *DB],
            "--home-root: '/home/' must be written plainly (no '.', '..', '//' or trailing '/')",
        ),
        (
            ["--socket", "/s", "--prefix", "b", "--home-root", "/home"],
            "--home-root needs --user-db-from (a home's owner is checked against it)",
        ),
        (
            ["--socket", "/s", "--prefix", "b", "--user-db-from", "/etc"],
            "--user-db-from and --user-db-to go together",
        ),
        (
            ["--socket", "/s", "--prefix", "b", "--upstream", "tcp://127.0.0.1:2375"],
            "upstream must be unix:///path/to/docker.sock, not 'tcp://127.0.0.1:2375'",
        ),
    ],
)
def test_bad_command_lines_are_refused_with_one_clear_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().endswith(f"error: {message}")
