"""`berth doctor`'s checks of the host and its engine as pure functions: facts written by hand
in, whole findings out (the certificate's: test_doctor_certificate.py; the hub's side:
test_doctor_hub_checks.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from berth.doctor import checks, facts
from berth.doctor.checks import ClockFacts, DaemonFacts, DiskFacts, EngineFacts, Finding

NOW = dt.datetime(2026, 11, 26, 20, 0, tzinfo=dt.UTC)
SOCKET = "unix:///var/run/docker.sock"
GIB = 2**30


def test_engine_that_answers():
    found = checks.check_engine(EngineFacts(SOCKET, version="20.10.24"))
    assert found == Finding("engine", "ok", f"Docker 20.10.24 answers at {SOCKET}")


@pytest.mark.parametrize(
    ("problem", "summary", "fix_starts"),
    [
        ("missing", f"no Docker engine at {SOCKET}: the socket does not exist", "install and"),
        (
            "permission",
            f"you may not use the engine at {SOCKET} (permission denied on its socket)",
            "run berth as root",
        ),
        (
            "refused",
            f"the engine at {SOCKET} refuses connections (dockerd is not running)",
            "start it",
        ),
        ("other", f"cannot talk to the engine at {SOCKET}: boom", "check DOCKER_HOST"),
    ],
)
def test_engine_problems_say_what_and_the_fix(problem, summary, fix_starts):
    found = checks.check_engine(EngineFacts(SOCKET, problem, "boom"))
    assert (found.check, found.status, found.summary) == ("engine", "fail", summary)
    assert found.fix.startswith(fix_starts)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "FileNotFoundError(2, 'No such file or directory'))",
            "missing",
        ),
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "PermissionError(13, 'Permission denied'))",
            "permission",
        ),
        (
            "Error while fetching server API version: ('Connection aborted.', "
            "ConnectionRefusedError(111, 'Connection refused'))",
            "refused",
        ),
        ("Error while fetching server API version: HTTPConnectionPool(...)", "other"),
    ],
)
def test_the_sdks_connection_errors_are_told_apart(message, kind):
    assert facts.classify_engine_error(message) == kind


def test_live_restore():
    assert checks.check_live_restore(EngineFacts(SOCKET, live_restore=True)).status == "ok"
    assert checks.check_live_restore(EngineFacts(SOCKET)).status == "skip"
    off = checks.check_live_restore(EngineFacts(SOCKET, live_restore=False))
    assert off == Finding(
        "live-restore",
        "warn",
        "off: every restart or upgrade of dockerd stops the hub, the proxy and every user's "
        "server (their running kernels are lost)",
        'add "live-restore": true to /etc/docker/daemon.json, then `systemctl reload docker` '
        "(a reload, not a restart, applies it)",
    )


@pytest.mark.parametrize(
    ("daemon", "status"),
    [
        (DaemonFacts({}, ()), "warn"),  # Docker's default is on
        (DaemonFacts({"userland-proxy": True}, ()), "warn"),
        (DaemonFacts({"userland-proxy": False}, ()), "ok"),
        (DaemonFacts({}, ("dockerd", "--userland-proxy=false")), "ok"),
        (DaemonFacts({"userland-proxy": False}, ("dockerd", "--userland-proxy=true")), "warn"),
        (DaemonFacts(None, None), "skip"),
    ],
)
def test_userland_proxy(daemon, status):
    assert checks.check_userland_proxy(daemon).status == status


def test_daemon_json_is_read_from_the_file(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"userland-proxy": true, "live-restore": false}')
    read = facts.daemon_facts(EngineFacts(SOCKET), path)
    assert read.daemon_json == {"userland-proxy": True, "live-restore": False}
    assert facts.daemon_facts(EngineFacts(SOCKET), tmp_path / "none").daemon_json == {}
    assert facts.daemon_facts(EngineFacts("tcp://10.0.0.2:2376"), path) == DaemonFacts()


@pytest.mark.parametrize(
    ("free", "total", "status"),
    [
        (100 * GIB, 200 * GIB, "ok"),
        (4 * GIB, 20 * GIB, "warn"),  # under 5 GiB
        (9 * GIB, 100 * GIB, "warn"),  # under 10 %
        (GIB // 2, 200 * GIB, "fail"),
    ],
)
def test_disk(free, total, status):
    found = checks.check_disk(DiskFacts("/var/lib/docker", total, free))
    assert found.status == status
    assert found.summary.startswith(f"{free / GIB:.1f} GiB free of {total / GIB:.1f} GiB")
    assert bool(found.fix) == (status != "ok")


def test_disk_of_a_remote_engine_is_skipped():
    assert checks.check_disk(DiskFacts("/var/lib/docker")).status == "skip"


def test_clock():
    assert checks.check_clock(ClockFacts(NOW, NOW, True)) == Finding("clock", "ok", "synchronized")
    skewed = checks.check_clock(ClockFacts(NOW, NOW + dt.timedelta(seconds=42), True))
    assert skewed == Finding(
        "clock",
        "warn",
        "the engine's clock is 42 s off this host's: logins through OAuth/OpenID and "
        "certificates check times, and fail when clocks disagree",
        "run an NTP client on both machines",
    )
    assert checks.check_clock(ClockFacts(NOW, NOW, False)).status == "warn"
    assert checks.check_clock(ClockFacts(NOW)).status == "skip"


def test_engine_time_with_nanoseconds_is_parsed():
    assert facts._parse_time("2026-11-26T20:18:14.921577219Z") == dt.datetime(
        2026, 11, 26, 20, 18, 14, 921577, tzinfo=dt.UTC
    )
    assert facts._parse_time("2026-11-26T20:18:14+01:00") == dt.datetime(
        2026, 11, 26, 19, 18, 14, tzinfo=dt.UTC
    )
    assert facts._parse_time("") is None
