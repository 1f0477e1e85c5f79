"""`berth doctor`'s checks: each a small pure function from facts (gathered separately, by
:mod:`berth.doctor.facts`) to a :class:`Finding` that says, in plain words, what is wrong and
how to fix it. No I/O here, so each check is tested with facts written by hand.

Here: the finding, and the checks of the host and its engine; the service's certificate is
checked in :mod:`berth.doctor.certificate`, the hub's side in :mod:`berth.doctor.hub_checks`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "skip"]

# Thresholds. Disk: the engine's data directory holds every image, container layer and volume.
DISK_FAIL_BYTES = 1 * 2**30
DISK_WARN_BYTES = 5 * 2**30
DISK_WARN_FRACTION = 0.10
CLOCK_WARN_SECONDS = 5.0  # OAuth tokens and cookies carry times; a few seconds already matter


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
