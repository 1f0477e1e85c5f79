"""`berth doctor`'s checks: each a small pure function from facts (gathered separately, by
:mod:`berth.doctor.facts`) to a :class:`Finding` that says, in plain words, what is wrong and
how to fix it. No I/O here, so each check is tested with facts written by hand."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

Status = Literal["ok", "warn", "fail", "skip"]

# Thresholds. Disk: the engine's data directory holds every image, container layer and volume.
DISK_FAIL_BYTES = 1 * 2**30
DISK_WARN_BYTES = 5 * 2**30
DISK_WARN_FRACTION = 0.10
CLOCK_WARN_SECONDS = 5.0  # OAuth tokens and cookies carry times; a few seconds already matter
CERT_WARN_DAYS = 21
NOTEBOOK_UID, NOTEBOOK_GID = 1000, 100  # docker-stacks' jovyan, the user of Berth's images


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    summary: str  # what was found
    fix: str = ""  # what to do about it (empty when all is well)


# -- the engine ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineFacts:
    docker_host: str  # as the client sees it: DOCKER_HOST, or the default socket
    problem: Literal["missing", "permission", "refused", "other"] | None = None
    detail: str = ""
    version: str = ""
    live_restore: bool | None = None
    root_dir: str = ""
    system_time: dt.datetime | None = None

    @property
    def reachable(self) -> bool:
        return self.problem is None


def check_engine(engine: EngineFacts) -> Finding:
    where = engine.docker_host
    if engine.problem is None:
        return Finding("engine", "ok", f"Docker {engine.version} answers at {where}")
    if engine.problem == "missing":
        return Finding(
            "engine",
            "fail",
            f"no Docker engine at {where}: the socket does not exist",
            "install and start Docker (`apt-get install docker.io`, `systemctl start docker`; "
            "scripts/setup.sh does both), or set DOCKER_HOST to the engine you use",
        )
    if engine.problem == "permission":
        return Finding(
            "engine",
            "fail",
            f"you may not use the engine at {where} (permission denied on its socket)",
            "run berth as root, or add your account to the socket's group (`usermod -aG docker "
            "USER`, then log in again); that group is as powerful as root",
        )
    if engine.problem == "refused":
        return Finding(
            "engine",
            "fail",
            f"the engine at {where} refuses connections (dockerd is not running)",
            "start it: `systemctl start docker` (or `dockerd &`)",
        )
    return Finding(
        "engine",
        "fail",
        f"cannot talk to the engine at {where}: {engine.detail}",
        "check DOCKER_HOST and that dockerd runs (`systemctl status docker`)",
    )


@dataclass(frozen=True)
class DaemonFacts:
    """The engine's settings as the host's files say (None: not known, e.g. a remote engine)."""

    daemon_json: dict[str, Any] | None = None  # /etc/docker/daemon.json ({} when there is none)
    dockerd_args: tuple[str, ...] | None = None  # the running dockerd's command line


def _flag(args: tuple[str, ...], name: str) -> bool | None:
    for arg in args:
        if arg == f"--{name}":
            return True
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1].lower() not in ("false", "0")
    return None


def check_live_restore(engine: EngineFacts) -> Finding:
    if engine.live_restore is None:
        return Finding("live-restore", "skip", "the engine did not say")
    if engine.live_restore:
        return Finding(
            "live-restore", "ok", "on: the service and user servers outlive a dockerd restart"
        )
    return Finding(
        "live-restore",
        "warn",
        "off: every restart or upgrade of dockerd stops the hub, the proxy and every user's "
        "server (their running kernels are lost)",
        'add "live-restore": true to /etc/docker/daemon.json, then `systemctl reload docker` '
        "(a reload, not a restart, applies it)",
    )


def check_userland_proxy(daemon: DaemonFacts) -> Finding:
    if daemon.daemon_json is None and daemon.dockerd_args is None:
        return Finding("userland-proxy", "skip", "the engine's settings are not readable here")
    on = _flag(daemon.dockerd_args or (), "userland-proxy")
    if on is None:
        on = bool((daemon.daemon_json or {}).get("userland-proxy", True))  # Docker's default: on
    if not on:
        return Finding("userland-proxy", "ok", "off: published ports survive a dockerd restart")
    return Finding(
        "userland-proxy",
        "warn",
        "on (Docker's default): connections to the service through 127.0.0.1 go through "
        "docker-proxy processes, which die with dockerd, so a dockerd restart drops them even "
        "with live-restore",
        'add "userland-proxy": false to /etc/docker/daemon.json and restart dockerd once '
        "(loopback then reaches published ports through the kernel's NAT)",
    )


# -- the host -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskFacts:
    path: str
    total: int | None = None  # bytes; None when the path is not on this host
    free: int | None = None


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


def check_disk(disk: DiskFacts) -> Finding:
    if disk.total is None or disk.free is None or disk.total <= 0:
        return Finding("disk", "skip", f"{disk.path or 'the engine data directory'} is not here")
    summary = f"{_gib(disk.free)} free of {_gib(disk.total)} in {disk.path}"
    fix = (
        "free space: `docker image prune` removes unused images (Berth's are rebuilt when "
        "needed); look for large user volumes with `docker system df -v`"
    )
    if disk.free < DISK_FAIL_BYTES:
        return Finding(
            "disk", "fail", f"{summary}: spawns, builds and the hub database will fail", fix
        )
    if disk.free < DISK_WARN_BYTES or disk.free < disk.total * DISK_WARN_FRACTION:
        return Finding("disk", "warn", f"{summary}: running low", fix)
    return Finding("disk", "ok", summary)


@dataclass(frozen=True)
class ClockFacts:
    host_now: dt.datetime
    engine_now: dt.datetime | None = None
    synchronized: bool | None = None  # the kernel's NTP status; None when unknown


def check_clock(clock: ClockFacts) -> Finding:
    problems, fixes = [], []
    if clock.engine_now is not None:
        skew = abs((clock.engine_now - clock.host_now).total_seconds())
        if skew > CLOCK_WARN_SECONDS:
            problems.append(f"the engine's clock is {skew:.0f} s off this host's")
            fixes.append("run an NTP client on both machines")
    if clock.synchronized is False:
        problems.append("nothing keeps this host's clock right (the kernel says unsynchronized)")
        fixes.append("install and enable an NTP client (`apt-get install systemd-timesyncd`)")
    if problems:
        return Finding(
            "clock",
            "warn",
            "; ".join(problems) + ": logins through OAuth/OpenID and certificates check times, "
            "and fail when clocks disagree",
            "; ".join(dict.fromkeys(fixes)),
        )
    if clock.synchronized is None and clock.engine_now is None:
        return Finding("clock", "skip", "neither the engine's time nor the NTP status is known")
    return Finding("clock", "ok", "synchronized" if clock.synchronized else "no skew found")


# -- the service --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFacts:
    source: str  # where it was read: a file, or the proxy's volume
    pem: bytes | None
    now: dt.datetime
    wanted_names: tuple[str, ...] = ()  # names people use to reach the service
    self_signed: bool = False
    error: str = ""


def certificate_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    names = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    names |= {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return names


def _covers(names: set[str], wanted: str) -> bool:
    try:
        return ipaddress.ip_address(wanted).compressed in names
    except ValueError:
        pass
    wanted = wanted.lower().rstrip(".")
    lowered = {n.lower() for n in names}
    if wanted in lowered:
        return True
    _, dot, parent = wanted.partition(".")
    return bool(dot) and f"*.{parent}" in lowered


def check_certificate(cert_facts: CertificateFacts) -> Finding:
    if cert_facts.pem is None:
        return Finding(
            "certificate", "skip", cert_facts.error or "no certificate found (run `berth up`)"
        )
    try:
        cert = x509.load_pem_x509_certificate(cert_facts.pem)
    except ValueError:
        return Finding(
            "certificate",
            "fail",
            f"{cert_facts.source} is not a PEM certificate",
            "point tls.cert at the certificate (PEM), then `berth up`",
        )
    renew = (
        "delete the self-signed certificate's marker so the hub makes a new one: `docker exec "
        "berth-hub rm /srv/berth/proxy/tls/self-signed-for`, then `docker restart berth-hub "
        "berth-proxy`"
        if cert_facts.self_signed
        else "renew it, put the new files where tls.cert and tls.key point, then `berth up`"
    )
    left = cert.not_valid_after_utc - cert_facts.now
    if cert.not_valid_before_utc > cert_facts.now:
        return Finding(
            "certificate",
            "fail",
            f"{cert_facts.source} is not valid yet (from "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC): browsers refuse it; is this "
            "host's clock behind?",
            "set the clock right (NTP), or use a certificate valid now",
        )
    if left.total_seconds() <= 0:
        return Finding(
            "certificate",
            "fail",
            f"{cert_facts.source} expired on {cert.not_valid_after_utc:%Y-%m-%d}: browsers "
            "refuse it",
            renew,
        )
    names = certificate_names(cert)
    missing = [n for n in cert_facts.wanted_names if not _covers(names, n)]
    if missing:
        return Finding(
            "certificate",
            "fail",
            f"{cert_facts.source} does not name {', '.join(missing)} (it names "
            f"{', '.join(sorted(names)) or 'nothing'}): browsers refuse it there",
            "list every name people use in tls.hostnames (self-signed), or get a certificate "
            "for them; then `berth up`",
        )
    expires = f"expires {cert.not_valid_after_utc:%Y-%m-%d} ({left.days} days)"
    if left.days < CERT_WARN_DAYS:
        return Finding("certificate", "warn", f"{cert_facts.source} {expires}", renew)
    return Finding("certificate", "ok", f"{cert_facts.source} {expires}")


@dataclass(frozen=True)
class DatabaseFacts:
    """The hub's PostgreSQL database, as a helper on the hub's network found it."""

    kind: Literal["sqlite", "postgresql"]
    problem: str = ""  # berth.deploy.pgtool's one line: "the hub database (…): what; fix"


def check_database(database: DatabaseFacts) -> Finding:
    if database.kind == "sqlite":
        return Finding("database", "ok", "SQLite in the hub's data volume")
    if not database.problem:
        return Finding("database", "ok", "PostgreSQL answers the hub's address")
    what, _, fix = database.problem.partition("; ")
    return Finding("database", "fail", what, fix or "check hub.db_url in berth.yaml")


@dataclass(frozen=True)
class HubReachFacts:
    """What a container placed like a user server saw when it asked for the hub's API."""

    url: str
    outcome: Literal["ok", "no-hub", "dns", "refused", "timeout", "http", "other"]
    detail: str = ""


def check_hub_reachable(reach: HubReachFacts) -> Finding:
    name = "hub-from-user"
    if reach.outcome == "ok":
        return Finding(name, "ok", f"a container on the users' network reaches {reach.url}")
    if reach.outcome == "no-hub":
        return Finding(name, "skip", reach.detail or "the hub is not running")
    consequence = (
        "user servers start, cannot reach the hub, and the spawn fails or times out "
        "(the classic hub_connect_ip problem)"
    )
    own_hub = (
        "with your own JupyterHub: c.JupyterHub.hub_ip = '0.0.0.0' (listen on the network, not "
        "127.0.0.1) and c.JupyterHub.hub_connect_ip = the hub container's name on the users' "
        "network"
    )
    fixes = {
        "dns": f"the name in {reach.url} does not resolve there: the hub and user servers "
        "must share a user-defined network (berth up makes one: run it again); " + own_hub,
        "refused": "nothing listens there: the hub listens on 127.0.0.1 or another port; "
        + own_hub,
        "timeout": "packets are dropped on the way: a firewall, or different networks; run "
        "`berth up` again (it restores its firewall rules); " + own_hub,
        "http": "something else answers there; check hub_connect_url / hub_connect_ip",
        "other": own_hub,
    }
    return Finding(
        name,
        "fail",
        f"{reach.url}: {reach.detail or reach.outcome}; {consequence}",
        fixes[reach.outcome],
    )


@dataclass(frozen=True)
class ImageFacts:
    image: str
    present: bool
    singleuser_version: str | None = None  # what `jupyterhub-singleuser --version` printed
    error: str = ""


def _major_minor(version: str) -> tuple[int, int] | None:
    parts = version.strip().split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


# Across a major release, the pairs the tests run together: a JupyterHub 6 hub with the images'
# 5.5 jupyterhub-singleuser (tests/integration/test_hub_versions.py; berth/versions.py).
_ACROSS_MAJORS = ((5, 5), (7, 0))


def _speak_together(found: tuple[int, int], hub: tuple[int, int]) -> bool:
    low, high = _ACROSS_MAJORS
    return found[0] == hub[0] or all(low <= version < high for version in (found, hub))


def check_image(image: ImageFacts, hub_version: str) -> Finding:
    name = f"image {image.image}"
    if not image.present:
        return Finding(
            name,
            "fail",
            "not on this engine: spawns of it fail (no registry is asked for Berth's images)",
            "build it (`berth images build`), or pull it",
        )
    if image.singleuser_version is None:
        return Finding(
            name,
            "fail",
            f"has no jupyterhub-singleuser ({image.error or 'not found'}): the hub can start "
            "it but never reach a notebook server in it",
            f"build it FROM berth/base-notebook, or `pip install jupyterhub=={hub_version}` in it",
        )
    found, hub = _major_minor(image.singleuser_version), _major_minor(hub_version)
    if found is None or hub is None or not _speak_together(found, hub):
        return Finding(
            name,
            "fail",
            f"jupyterhub-singleuser {image.singleuser_version.strip()} does not speak the "
            f"hub's API (JupyterHub {hub_version}): servers start and fail to register",
            f"install jupyterhub=={hub_version} in the image",
        )
    if found < hub:
        return Finding(
            name,
            "warn",
            f"jupyterhub-singleuser {image.singleuser_version.strip()} is older than the hub "
            f"({hub_version}); it works, with the hub's newer features missing",
            f"install jupyterhub=={hub_version} in the image",
        )
    return Finding(name, "ok", f"jupyterhub-singleuser {image.singleuser_version.strip()}")


@dataclass(frozen=True)
class VolumeFacts:
    name: str
    uid: int
    gid: int
    mode: int  # permission bits of the volume's root directory


@dataclass(frozen=True)
class VolumesFacts:
    volumes: tuple[VolumeFacts, ...] = ()
    error: str = ""
    image: str = "berth/hub:latest"  # for the fix's command line
    expected: tuple[int, int] = field(default=(NOTEBOOK_UID, NOTEBOOK_GID))


def writable_by(volume: VolumeFacts, uid: int, gid: int) -> bool:
    if volume.uid == uid:
        return bool(volume.mode & 0o200)
    if volume.gid == gid:
        return bool(volume.mode & 0o020)
    return bool(volume.mode & 0o002)


def check_volumes(volumes: VolumesFacts) -> Finding:
    if volumes.error:
        return Finding("volumes", "skip", volumes.error)
    if not volumes.volumes:
        return Finding("volumes", "skip", "no user volumes yet")
    uid, gid = volumes.expected
    bad = [v for v in volumes.volumes if not writable_by(v, uid, gid)]
    if not bad:
        return Finding(
            "volumes", "ok", f"{len(volumes.volumes)} user volume(s), each writable by {uid}"
        )
    shown = ", ".join(f"{v.name} ({v.uid}:{v.gid}, {v.mode:o})" for v in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return Finding(
        "volumes",
        "fail",
        f"the notebook user ({uid}:{gid}) cannot write to {shown}{more}: saving a notebook "
        "there fails with 'Permission denied'",
        f"hand each to the notebook user, e.g. `docker run --rm --user 0 -v {bad[0].name}:/v "
        f"--entrypoint chown {volumes.image} {uid}:{gid} /v` (with its server stopped)",
    )
