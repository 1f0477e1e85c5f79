"""Pure checks of the JSON bodies the hub sends: container create, exec create, volume create.

Each check returns the mount sources the body refers to, named volumes (their labels decide
later, see :mod:`.policy`) and allowed host paths (absolute: their symlinks are checked later),
or raises :class:`Refused` with a reason a person can act on.

The engine decodes these bodies with Go's ``encoding/json``, which matches object keys to struct
fields *case-insensitively* (``"privileged": true`` sets ``Privileged``). So struct objects are
read through :func:`fields`, which folds keys to lower case and refuses a key given twice in two
spellings; maps whose keys are data (``Labels``, ``EndpointsConfig``) are read as they are.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from berth.homeroots import home_child_problem
from berth.labels import LABEL_MANAGED, LABEL_PREFIX

# Labels `berth up` and `berth down` read to find the service's own objects: a hub must never put
# them on what it makes (a user's container labelled as the hub would be taken for the hub's).
DEPLOY_LABELS = "berth.deploy."

# Copies of berth.spawner.specs' constants (a unit test keeps them equal): importing the spawner
# package would load JupyterHub into the guard, which needs none of it.
NO_NEW_PRIVILEGES = "no-new-privileges"
ROOT_START_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID")
GRANT_SUDO_EXTRA_CAPS = ("AUDIT_WRITE", "FSETID", "KILL")
VOLUME_INIT_CAPS = ("CHOWN", "DAC_OVERRIDE")

# What Berth's start paths add (specs.start_privileges) plus the volume-init container's
# CAP_CHOWN and CAP_DAC_OVERRIDE (volumes.volume_init_kwargs); nothing else, ever. Never
# CAP_DAC_READ_SEARCH: with it, Docker's seccomp profile allows open_by_handle_at, which reaches
# the host's file system from any container ("shocker").
ALLOWED_CAPS = frozenset({*ROOT_START_CAPS, *GRANT_SUDO_EXTRA_CAPS, *VOLUME_INIT_CAPS})
ALLOWED_SECURITY_OPTS = frozenset(
    {NO_NEW_PRIVILEGES, f"{NO_NEW_PRIVILEGES}:true", f"{NO_NEW_PRIVILEGES}=true"}
)
ALLOWED_RUNTIMES = frozenset({"", "runc"})
ALLOWED_LOG_DRIVERS = frozenset({"", "json-file", "local"})
LOOPBACK = frozenset({"127.0.0.1", "::1"})  # the spawner's host_ip when it publishes a port
# Namespace modes: only the container's own namespaces ("" = the engine's default).
ALLOWED_MODES = {
    "pidmode": frozenset({""}),
    "ipcmode": frozenset({"", "private", "shareable", "none"}),
    "utsmode": frozenset({""}),
    "usernsmode": frozenset({""}),
    "cgroupnsmode": frozenset({"", "private"}),
    "cgroup": frozenset({""}),
}
# Host-config fields that must stay empty: each one reaches past the container's own sandbox
# (host devices, kernel parameters, cgroup placement, other containers' volumes or namespaces,
# volume plugins).
MUST_BE_EMPTY = (
    ("devices", "Devices (host devices)"),
    ("devicerequests", "DeviceRequests (host devices)"),
    ("devicecgrouprules", "DeviceCgroupRules"),
    ("cgroupparent", "CgroupParent"),
    ("sysctls", "Sysctls"),
    ("volumedriver", "VolumeDriver"),
    ("volumesfrom", "VolumesFrom"),
    ("links", "Links"),
    ("capabilities", "Capabilities"),
    ("annotations", "Annotations"),  # newer engines hand these to the runtime (API 1.43+)
)
MAX_BODY = 1024 * 1024  # every body the hub sends is a few kilobytes


class Refused(Exception):
    """The request is not allowed; ``str(exc)`` says why."""


@dataclass(frozen=True)
class SwarmLimits:
    """What a user's Swarm service may be (``backend: swarm``; see :mod:`.services`)."""

    images: tuple[str, ...] = ()  # exactly as the hub's config names them
    volume_templates: tuple[str, ...] = ()  # the users' volume name templates
    volume_driver: str = ""  # "": the local driver with no options (no DriverConfig)
    volume_options: tuple[tuple[str, str], ...] = ()  # templates, like the volume names
    max_memory: int = 0  # bytes; 0: no limit required
    max_cpus: float = 0.0
    max_pids: int = 0
    constraints: tuple[str, ...] = ()  # placement constraints every server keeps
    reserved_names: tuple[str, ...] = ()  # Berth's own services: never a user's name


@dataclass(frozen=True)
class Limits:
    """What the operator allows beyond Berth's own objects."""

    prefix: str
    allow_binds: tuple[str, ...] = ()  # host paths (and everything under them)
    networks: tuple[str, ...] = ()  # network names; "none" is always allowed
    home_roots: tuple[str, ...] = ()  # homes roots: one home each bind (see .homes)
    user_db: str = ""  # the host's passwd and group are here (its /etc, as the guard sees it)
    swarm: SwarmLimits | None = None  # a Swarm manager: only the Swarm spawner's calls


def parse_json(body: bytes) -> Any:
    """The body as JSON; refuses invalid JSON and objects with a key given twice."""
    if len(body) > MAX_BODY:
        raise Refused(f"request body larger than {MAX_BODY} bytes")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise Refused(f"JSON key {key!r} given twice")
            result[key] = value
        return result

    try:
        return json.loads(body or b"null", object_pairs_hook=no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(f"request body is not valid JSON ({exc})") from exc


def fields(obj: Any, what: str) -> dict[str, Any]:
    """A struct object with its keys folded as Go's JSON decoder matches them."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise Refused(f"{what} must be a JSON object")
    folded: dict[str, Any] = {}
    for key, value in obj.items():
        if not key.isascii():
            raise Refused(f"{what} has a non-ASCII field name {key!r}")
        low = key.lower()
        if low in folded:
            raise Refused(f"{what} sets {key!r} twice (in two spellings)")
        folded[low] = value
    return folded


def managed(labels: Mapping[str, str] | None, prefix: str) -> bool:
    """Whether labels mark an object as Berth's, of this deployment."""
    found = labels or {}
    return found.get(LABEL_MANAGED) == "true" and found.get(LABEL_PREFIX) == prefix


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Refused(f"{what} must be a list of strings")
    return value


def _string(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused(f"{what} must be a string")
    return value


def _cap_name(cap: str) -> str:
    name = cap.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def host_path_allowed(path: str, allow_binds: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``allow_binds`` or lies under one (after normalizing)."""
    if not path.startswith("/") or "\0" in path:
        return False
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    for allowed in allow_binds:
        root = posixpath.normpath(allowed)
        if root == "/":
            return True
        if clean == root or clean.startswith(root + "/"):
            return True
    return False


def home_root_of(source: str, roots: tuple[str, ...]) -> str | None:
    """The homes root ``source`` is (or lies) in, compared as written; None if none."""
    for root in roots:
        if source == root or source.startswith(root + "/"):
            return root
    return None


def _check_home_source(source: str, root: str) -> None:
    """A home bind's source must be ``<root>/<name>``, written plainly (see .homes)."""
    if source == root:
        raise Refused(f"bind mount of {root!r}, the homes root, is not allowed (one home only)")
    if problem := home_child_problem(source, root):
        raise Refused(f"bind mount of host path {source!r} is not allowed: {problem}")


def _check_host_source(source: str, limits: Limits) -> None:
    """An absolute bind source: one home, or a path under ``--allow-bind``."""
    if (root := home_root_of(source, limits.home_roots)) is not None:
        _check_home_source(source, root)
    elif not host_path_allowed(source, limits.allow_binds):
        raise Refused(f"bind mount of host path {source!r} is not allowed")


def check_labels(labels: Any, limits: Limits, what: str) -> None:
    if labels is not None and not isinstance(labels, dict):
        raise Refused(f"{what} labels must be an object")
    if not managed(labels, limits.prefix):
        raise Refused(
            f"{what} must carry the labels {LABEL_MANAGED}=true and {LABEL_PREFIX}={limits.prefix}"
        )


def check_network(name: str, limits: Limits) -> None:
    if name == "none":
        return
    if name in {"", "default"}:
        name = "bridge"
    if name == "host" or name.startswith("container:"):
        raise Refused(f"network mode {name!r} shares a namespace outside the container")
    if name not in limits.networks:
        raise Refused(f"network {name!r} is not one the hub may use")


def _check_bind(bind: Any, limits: Limits, volumes: list[str]) -> None:
    if not isinstance(bind, str):
        raise Refused("Binds entries must be strings")
    source = bind.split(":", 1)[0]
    if source.startswith("/"):
        _check_host_source(source, limits)
        volumes.append(source)
    elif source:
        volumes.append(source)
    else:
        raise Refused(f"bind {bind!r} has no source")


def _check_mount(mount: Any, limits: Limits, volumes: list[str]) -> None:
    spec = fields(mount, "Mounts entry")
    kind = _string(spec.get("type"), "Mount Type") or "volume"
    source = _string(spec.get("source"), "Mount Source")
    if kind == "bind":
        if not source.startswith("/"):
            raise Refused(f"bind mount source {source!r} must be an absolute host path")
        _check_host_source(source, limits)
        volumes.append(source)
    elif kind == "volume":
        options = fields(spec.get("volumeoptions"), "VolumeOptions")
        if options.get("driverconfig"):
            raise Refused("volume mounts with a DriverConfig are not allowed")
        if source:
            volumes.append(source)
    elif kind != "tmpfs":
        raise Refused(f"mounts of type {kind!r} are not allowed")


def check_host_config(raw: Any, limits: Limits) -> list[str]:
    """Refuse every escape from the container's sandbox; returns the mount sources used."""
    hc = fields(raw, "HostConfig")
    if hc.get("privileged"):
        raise Refused("privileged containers are not allowed")
    caps = [_cap_name(cap) for cap in _strings(hc.get("capadd"), "CapAdd")]
    extra = sorted(set(caps) - ALLOWED_CAPS)
    if extra:
        raise Refused(f"capabilities {', '.join(extra)} are not allowed (CapAdd)")
    if "ALL" not in {_cap_name(cap) for cap in _strings(hc.get("capdrop"), "CapDrop")}:
        raise Refused("containers must drop all capabilities (CapDrop [ALL]) and add back few")
    for key, allowed in ALLOWED_MODES.items():
        mode = _string(hc.get(key), key)
        if mode not in allowed:
            raise Refused(f"{key} {mode!r} is not allowed (only the container's own namespace)")
    for key, label in MUST_BE_EMPTY:
        if hc.get(key):
            raise Refused(f"{label} is not allowed")
    # MaskedPaths/ReadonlyPaths: even an empty list replaces the engine's defaults (unmasking).
    for key in ("maskedpaths", "readonlypaths"):
        if key in hc and hc[key] is not None:
            raise Refused(f"{key} is not allowed")
    for option in _strings(hc.get("securityopt"), "SecurityOpt"):
        if option.strip() not in ALLOWED_SECURITY_OPTS:
            raise Refused(f"security option {option!r} is not allowed")
    runtime = _string(hc.get("runtime"), "Runtime")
    if runtime not in ALLOWED_RUNTIMES:
        raise Refused(f"runtime {runtime!r} is not allowed")
    # Other log drivers (syslog, gelf, fluentd, …) make dockerd connect, from the host's own
    # network, to any address the request names.
    log_driver = _string(fields(hc.get("logconfig"), "LogConfig").get("type"), "LogConfig.Type")
    if log_driver not in ALLOWED_LOG_DRIVERS:
        raise Refused(f"log driver {log_driver!r} is not allowed")
    if hc.get("publishallports"):
        raise Refused("PublishAllPorts is not allowed")
    for port, bindings in (fields(hc.get("portbindings"), "PortBindings")).items():
        if not isinstance(bindings or [], list):
            raise Refused("PortBindings values must be lists")
        for binding in bindings or []:
            host_ip = _string(fields(binding, "PortBinding").get("hostip"), "HostIp")
            if host_ip not in LOOPBACK:
                raise Refused(f"port {port} may be published on loopback only, not {host_ip!r}")
    check_network(_string(hc.get("networkmode"), "NetworkMode"), limits)
    volumes: list[str] = []
    for bind in hc.get("binds") or []:
        _check_bind(bind, limits, volumes)
    mounts = hc.get("mounts") or []
    if not isinstance(mounts, list):
        raise Refused("Mounts must be a list")
    for mount in mounts:
        _check_mount(mount, limits, volumes)
    return volumes


def check_container_create(body: bytes, limits: Limits) -> list[str]:
    """``POST /containers/create``: returns its mount sources (volume names, host paths)."""
    config = fields(parse_json(body), "container config")
    check_labels(config.get("labels"), limits, "containers")
    if any(key.lower().startswith(DEPLOY_LABELS) for key in config.get("labels") or {}):
        raise Refused(f"a user's container carries no {DEPLOY_LABELS}* label")
    if not isinstance(config.get("hostconfig"), dict):
        # Without one, the engine takes host settings (Privileged, Binds, ...) from the top level.
        raise Refused("containers need a HostConfig object")
    volumes = check_host_config(config.get("hostconfig"), limits)
    networking = fields(config.get("networkingconfig"), "NetworkingConfig")
    endpoints = networking.get("endpointsconfig") or {}
    if not isinstance(endpoints, dict):
        raise Refused("EndpointsConfig must be an object")
    for network in endpoints:
        check_network(network, limits)
    return volumes


def check_exec_create(body: bytes) -> None:
    """``POST /containers/{id}/exec``: never a privileged exec (it would get every capability),
    and only as the container's own user: an exec as root into a system user's container could
    leave a root-owned set-uid program in their host home (the spawner never names a user)."""
    config = fields(parse_json(body), "exec config")
    if config.get("privileged"):
        raise Refused("privileged exec is not allowed")
    if _string(config.get("user"), "User"):
        raise Refused("an exec runs as the container's own user (no User)")


def check_volume_create(body: bytes, limits: Limits) -> None:
    """``POST /volumes/create``: a plain local volume labelled as Berth's."""
    config = fields(parse_json(body), "volume config")
    check_labels(config.get("labels"), limits, "volumes")
    driver = _string(config.get("driver"), "Driver")
    if driver not in {"", "local"}:
        raise Refused(f"volume driver {driver!r} is not allowed")
    # The local driver's options can mount any host device or path (type=none,o=bind).
    if config.get("driveropts"):
        raise Refused("volume DriverOpts are not allowed")
    if config.get("clustervolumespec"):
        raise Refused("cluster volumes are not allowed")


def network_connect_container(body: bytes) -> str:
    """The container named by a network connect/disconnect body."""
    config = fields(parse_json(body), "network connect config")
    container = _string(config.get("container"), "Container")
    if not container:
        raise Refused("network connect/disconnect needs a Container")
    return container
