"""Gathering what `berth doctor` checks: from the engine, the host's files, and short-lived
probe containers (:mod:`berth.doctor.probes`). Each function returns the plain facts of
:mod:`berth.doctor.checks`; none of them judges."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from berth.config.schema import BerthConfig
from berth.deploy import layout
from berth.doctor.certificate import CertificateFacts
from berth.doctor.checks import (
    ClockFacts,
    DaemonFacts,
    DiskFacts,
    EngineFacts,
)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DAEMON_JSON = Path("/etc/docker/daemon.json")


def classify_engine_error(message: str) -> str:
    """What kind of "cannot connect" the docker SDK's message describes."""
    lowered = message.lower()
    if "permission denied" in lowered or "permissionerror" in lowered:
        return "permission"
    if "no such file or directory" in lowered or "filenotfounderror" in lowered:
        return "missing"
    if "connection refused" in lowered:
        return "refused"
    return "other"


def engine_facts(timeout: int = 30) -> tuple[docker.DockerClient | None, EngineFacts]:
    where = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    try:
        client = docker.from_env(timeout=timeout)
        info = client.info()
        version = client.version().get("Version", "")
    except DockerException as exc:
        kind = classify_engine_error(str(exc))
        return None, EngineFacts(where, kind, str(exc)[:300])  # type: ignore[arg-type]
    return client, EngineFacts(
        docker_host=where,
        version=version,
        live_restore=info.get("LiveRestoreEnabled"),
        root_dir=info.get("DockerRootDir", ""),
        system_time=_parse_time(info.get("SystemTime", "")),
    )


def _parse_time(text: str) -> dt.datetime | None:
    """The engine's RFC 3339 time with nanoseconds (Python parses microseconds at most)."""
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def is_local(engine: EngineFacts) -> bool:
    return engine.docker_host.startswith("unix://")


def daemon_facts(engine: EngineFacts, daemon_json: Path = DAEMON_JSON) -> DaemonFacts:
    """/etc/docker/daemon.json and dockerd's command line, when the engine is on this host."""
    if not is_local(engine):
        return DaemonFacts()
    try:
        config = json.loads(daemon_json.read_text())
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError):
        config = None
    return DaemonFacts(daemon_json=config, dockerd_args=_dockerd_args())


def _dockerd_args() -> tuple[str, ...] | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if args and Path(args[0].decode(errors="replace")).name == "dockerd":
                return tuple(a.decode(errors="replace") for a in args if a)
    return None


def disk_facts(engine: EngineFacts) -> DiskFacts:
    path = engine.root_dir or "/var/lib/docker"
    if not is_local(engine) or not os.path.isdir(path):
        return DiskFacts(path)
    stats = os.statvfs(path)
    return DiskFacts(path, stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize)


class _Timex(ctypes.Structure):
    # struct timex (Linux, 64-bit): what adjtimex(2) reads when modes is 0.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]


TIME_ERROR = 5  # adjtimex's answer when the clock is not synchronized


def clock_synchronized() -> bool | None:
    """The kernel's own view (what `timedatectl` shows as "System clock synchronized")."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        state = libc.adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != TIME_ERROR)


def clock_facts(engine: EngineFacts) -> ClockFacts:
    return ClockFacts(
        host_now=dt.datetime.now(dt.UTC),
        engine_now=engine.system_time,
        synchronized=clock_synchronized(),
    )


def wanted_names(cfg: BerthConfig) -> tuple[str, ...]:
    """The names people use: the configured host names, and a specific listen address."""
    names = list(cfg.tls.hostnames)
    if cfg.listen.address not in ("0.0.0.0", "::", "127.0.0.1", "::1"):
        names.append(cfg.listen.address)
    return tuple(dict.fromkeys(names))


def certificate_facts(client: docker.DockerClient | None, cfg: BerthConfig) -> CertificateFacts:
    """The operator's certificate file, or the one in the proxy's volume (read through the
    running proxy container, which mounts it)."""
    now = dt.datetime.now(dt.UTC)
    names = wanted_names(cfg)
    if cfg.tls.cert:
        try:
            return CertificateFacts(str(cfg.tls.cert), Path(cfg.tls.cert).read_bytes(), now, names)
        except OSError as exc:
            return CertificateFacts(str(cfg.tls.cert), None, now, names, error=str(exc))
    if client is None:
        return CertificateFacts("the proxy's certificate", None, now, names, error="no engine")
    try:
        proxy = client.containers.get(layout.PROXY_CONTAINER)
        pem = _read(proxy, layout.TLS_CERT)
    except (NotFound, APIError):
        return CertificateFacts(
            "the proxy's certificate", None, now, names, error="the proxy is not running"
        )
    return CertificateFacts("the self-signed certificate", pem, now, names, self_signed=True)


def _read(container: Container, path: str) -> bytes:
    import io
    import tarfile

    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        extracted = tar.extractfile(member) if member else None
        return extracted.read() if extracted else b""
