"""`python -m berth.guard`'s command line: the interface `berth up` starts the guard with."""

from __future__ import annotations

import pytest

from berth.guard.__main__ import limits_from, parse_args
from berth.guard.bodies import Limits, SwarmLimits
from berth.spawner import limits

DB = ["--user-db-from", "/etc", "--user-db-to", "/tmp/userdb"]
SWARM = ["--swarm", "--image", "i", "--volume-template", "v"]
NO_SWARM = {
    "swarm": False,
    "image": [],
    "volume_template": [],
    "volume_driver": "",
    "volume_opt": [],
    "placement_constraint": [],
    "reserved_name": [],
    "max_memory": None,
    "max_cpus": None,
    "max_pids": None,
}


def test_a_swarm_managers_guard_command_line_parses() -> None:
    """As swarm_plan.py starts it (`backend: swarm`); unset maxima are the spawner's defaults."""
    args = parse_args(
        [
            "--socket", "/run/berth-engine/docker.sock", "--prefix", "berth", "--network", "net",
            "--swarm", "--image", "m:5000/berth/base-notebook:latest",
            "--volume-template", "berth-user-{username}",
            "--volume-driver", "local", "--volume-opt", "type=nfs", "--volume-opt", "o=a=b",
            "--placement-constraint", "node.role==worker",
            "--reserved-name", "berth-hub", "--max-memory", "268435456",
        ]
    )  # fmt: skip
    assert limits_from(args) == Limits(
        "berth",
        networks=("net",),
        swarm=SwarmLimits(
            images=("m:5000/berth/base-notebook:latest",),
            volume_templates=("berth-user-{username}",),
            volume_driver="local",
            volume_options=(("type", "nfs"), ("o", "a=b")),
            max_memory=268435456,
            max_cpus=limits.default_cpu_limit(),
            max_pids=limits.DEFAULT_PIDS_LIMIT,
            constraints=("node.role==worker",),
            reserved_names=("berth-hub",),
        ),
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--swarm"], "--swarm needs --image and --volume-template"),
        ([*SWARM, "--allow-bind", "/srv"], "--swarm allows no host paths"),
        ([*SWARM, "--volume-opt", "x"], "--volume-opt takes KEY=VALUE, not 'x'"),
    ],
)  # fmt: skip
def test_a_swarm_command_line_that_cannot_work_is_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--socket", "/s", "--prefix", "b", *argv])
    assert message in capsys.readouterr().err


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
        **NO_SWARM,
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
