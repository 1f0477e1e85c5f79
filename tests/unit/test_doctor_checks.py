"""`berth doctor`'s checks as pure functions: facts written by hand in, whole findings out."""

from __future__ import annotations

import datetime as dt

import pytest

from berth import tls
from berth.doctor import checks, facts
from berth.doctor.checks import (
    CertificateFacts,
    ClockFacts,
    DaemonFacts,
    DiskFacts,
    EngineFacts,
    Finding,
    HubReachFacts,
    ImageFacts,
    VolumeFacts,
    VolumesFacts,
)

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


def _cert(names: list[str], issued: dt.datetime) -> bytes:
    return tls.self_signed(names, now=issued).cert_pem


def test_a_good_certificate():
    pem = _cert(["hub.example.org", "192.0.2.7"], NOW - dt.timedelta(days=10))
    found = checks.check_certificate(
        CertificateFacts("cert.pem", pem, NOW, ("hub.example.org", "192.0.2.7"))
    )
    assert found.status == "ok" and found.summary.startswith("cert.pem expires ")


def test_an_expired_certificate():
    pem = _cert(["hub.example.org"], NOW - dt.timedelta(days=tls.VALID_DAYS + 1))
    found = checks.check_certificate(CertificateFacts("cert.pem", pem, NOW))
    assert found.status == "fail" and "expired on" in found.summary
    assert found.fix.startswith("renew it")
    mine = checks.check_certificate(CertificateFacts("cert.pem", pem, NOW, self_signed=True))
    assert "self-signed-for" in mine.fix


def test_a_certificate_about_to_expire_and_one_not_valid_yet():
    soon = _cert(["h"], NOW - dt.timedelta(days=tls.VALID_DAYS - 3))
    assert checks.check_certificate(CertificateFacts("c", soon, NOW)).status == "warn"
    future = _cert(["h"], NOW + dt.timedelta(days=2))
    found = checks.check_certificate(CertificateFacts("c", future, NOW))
    assert found.status == "fail" and "not valid yet" in found.summary


def test_a_certificate_without_the_name_people_use():
    pem = _cert(["hub.example.org"], NOW)
    found = checks.check_certificate(
        CertificateFacts("cert.pem", pem, NOW, ("jupyter.example.org",))
    )
    assert found == Finding(
        "certificate",
        "fail",
        "cert.pem does not name jupyter.example.org (it names hub.example.org): browsers "
        "refuse it there",
        "list every name people use in tls.hostnames (self-signed), or get a certificate for "
        "them; then `berth up`",
    )


def test_wildcards_and_addresses_cover_names():
    assert checks._covers({"*.example.org"}, "hub.example.org")
    assert not checks._covers({"*.example.org"}, "a.hub.example.org")
    assert checks._covers({"2001:db8::1"}, "2001:db8:0::1")
    assert checks._covers({"Hub.Example.org"}, "hub.example.org.")


def test_no_certificate_and_a_broken_one():
    assert checks.check_certificate(CertificateFacts("c", None, NOW)).status == "skip"
    assert checks.check_certificate(CertificateFacts("c", b"nonsense", NOW)).status == "fail"


URL = "http://berth-hub:8081/hub/api/"


@pytest.mark.parametrize(
    ("outcome", "status", "fix_has"),
    [
        ("ok", "ok", ""),
        ("no-hub", "skip", ""),
        ("dns", "fail", "user-defined network"),
        ("refused", "fail", "hub_ip = '0.0.0.0'"),
        ("timeout", "fail", "firewall"),
        ("http", "fail", "hub_connect_url"),
    ],
)
def test_hub_reachable_from_a_user_container(outcome, status, fix_has):
    found = checks.check_hub_reachable(HubReachFacts(URL, outcome, "detail"))
    assert (found.check, found.status) == ("hub-from-user", status)
    assert fix_has in found.fix
    if status == "fail":
        assert found.summary == (
            f"{URL}: detail; user servers start, cannot reach the hub, and the spawn fails or "
            "times out (the classic hub_connect_ip problem)"
        )


@pytest.mark.parametrize(
    ("image", "status", "summary"),
    [
        (ImageFacts("i", True, "5.5.4"), "ok", "jupyterhub-singleuser 5.5.4"),
        (
            ImageFacts("i", True, "5.2.1"),
            "warn",
            "jupyterhub-singleuser 5.2.1 is older than "
            "the hub (5.5.4); it works, with the hub's newer features missing",
        ),
        (
            ImageFacts("i", True, "4.1.5"),
            "fail",
            "jupyterhub-singleuser 4.1.5 does not speak "
            "the hub's API (JupyterHub 5.5.4): servers start and fail to register",
        ),
        (
            ImageFacts("i", True, None, "no jupyterhub-singleuser command in it"),
            "fail",
            "has no jupyterhub-singleuser (no jupyterhub-singleuser command in it): the hub can "
            "start it but never reach a notebook server in it",
        ),
        (
            ImageFacts("i", False),
            "fail",
            "not on this engine: spawns of it fail (no registry is asked for Berth's images)",
        ),
    ],
)
def test_images(image, status, summary):
    found = checks.check_image(image, "5.5.4")
    assert (found.check, found.status, found.summary) == ("image i", status, summary)


def test_images_across_jupyterhub_5_and_6():
    """A 6.1 hub serves the images' 5.5 jupyterhub-singleuser (test_hub_versions.py runs it);
    a 5.4 one was never tested with it."""
    found = [
        (f.status, f.summary)
        for f in (
            checks.check_image(ImageFacts("i", True, "5.5.4"), "6.1.1"),
            checks.check_image(ImageFacts("i", True, "5.4.6"), "6.1.1"),
        )
    ]
    assert found == [
        (
            "warn",
            "jupyterhub-singleuser 5.5.4 is older than the hub (6.1.1); it works, with the "
            "hub's newer features missing",
        ),
        (
            "fail",
            "jupyterhub-singleuser 5.4.6 does not speak the hub's API (JupyterHub 6.1.1): "
            "servers start and fail to register",
        ),
    ]


def test_volumes():
    good = VolumeFacts("berth-user-alice", 1000, 100, 0o755)
    group = VolumeFacts("berth-user-bob", 0, 100, 0o775)
    rooted = VolumeFacts("berth-user-carol", 0, 0, 0o755)
    assert checks.check_volumes(VolumesFacts((good, group))).status == "ok"
    found = checks.check_volumes(VolumesFacts((good, rooted)))
    assert found == Finding(
        "volumes",
        "fail",
        "the notebook user (1000:100) cannot write to berth-user-carol (0:0, 755): saving a "
        "notebook there fails with 'Permission denied'",
        "hand each to the notebook user, e.g. `docker run --rm --user 0 -v "
        "berth-user-carol:/v --entrypoint chown berth/hub:latest 1000:100 /v` (with its server "
        "stopped)",
    )
    assert checks.check_volumes(VolumesFacts()).status == "skip"
    assert checks.check_volumes(VolumesFacts(error="cannot")).status == "skip"


def test_database():
    assert checks.check_database(checks.DatabaseFacts("sqlite")).status == "ok"
    assert checks.check_database(checks.DatabaseFacts("postgresql")) == Finding(
        "database", "ok", "PostgreSQL answers the hub's address"
    )
    problem = (
        "the hub database (jupyterhub on db:5432 as hub): PostgreSQL refused the password for "
        "the user hub; correct the password in hub.db_url (berth.yaml)"
    )
    assert checks.check_database(checks.DatabaseFacts("postgresql", problem)) == Finding(
        "database",
        "fail",
        "the hub database (jupyterhub on db:5432 as hub): PostgreSQL refused the password for "
        "the user hub",
        "correct the password in hub.db_url (berth.yaml)",
    )
