"""Pure checks of the Swarm calls the hub sends (``backend: swarm``): a user server's service
create, and the task listing it follows the service with.

A service spec reaches every node of the Swarm, so it is judged field by field against what the
Swarm spawner's builder (:mod:`berth.spawner.swarm_specs`) makes, and anything it never makes is
refused: a field the check does not know is refused rather than passed on. As with containers
(:mod:`.bodies`), the engine decodes these bodies with Go's case-insensitive JSON decoder, so
struct objects are read through :func:`~.bodies.fields`.

:func:`check_service_create` returns the named volumes the service mounts, with the user they
must belong to: the server looks each up on the manager's engine (where Berth's own volumes, the
hub's data among them, live), and :mod:`.policy` refuses one that exists and is not that user's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from berth import names
from berth.labels import LABEL_ROLE, LABEL_SERVER, LABEL_USER, ROLE_SINGLEUSER

from .bodies import (
    DEPLOY_LABELS,
    GRANT_SUDO_EXTRA_CAPS,
    ROOT_START_CAPS,
    Limits,
    Refused,
    SwarmLimits,
    check_labels,
    fields,
    parse_json,
)

NANO = 10**9
# What the Swarm spawner may add back after dropping ALL (a root start, sudo): never more.
SERVICE_CAPS = frozenset({*ROOT_START_CAPS, *GRANT_SUDO_EXTRA_CAPS})
# The only users the builder sets: none (the image's), or root for a root start.
SERVICE_USERS = frozenset({"", "root"})

# The fields each struct may have: what the builder writes, plus a few that act only inside the
# server's own container. Everything else (Secrets, Configs, Privileges, Sysctls, Ulimits,
# Groups, Isolation, LogDriver, Runtime, PluginSpec, GenericResources, ...) is refused.
SERVICE_FIELDS = frozenset(
    {"name", "labels", "tasktemplate", "mode", "endpointspec", "updateconfig", "rollbackconfig"}
)
TASK_FIELDS = frozenset(
    {"containerspec", "resources", "restartpolicy", "placement", "networks", "forceupdate"}
)
CONTAINER_FIELDS = frozenset(
    {
        "image", "labels", "command", "args", "hostname", "env", "dir", "user", "init",
        "stopsignal", "stopgraceperiod", "tty", "openstdin", "readonly", "mounts",
        "healthcheck", "hosts", "dnsconfig", "capabilityadd", "capabilitydrop",
    }
)  # fmt: skip
MOUNT_FIELDS = frozenset({"type", "source", "target", "readonly", "consistency", "volumeoptions"})
VOLUME_OPTION_FIELDS = frozenset({"nocopy", "labels", "driverconfig"})
PLACEMENT_FIELDS = frozenset({"constraints", "preferences", "maxreplicas", "platforms"})
LIMIT_FIELDS = frozenset({"nanocpus", "memorybytes", "pids"})
RESERVATION_FIELDS = frozenset({"nanocpus", "memorybytes"})
TASK_FILTERS = frozenset({"service", "desired-state"})  # what the spawner and `berth up` send


def _only(obj: Any, allowed: frozenset[str], what: str) -> dict[str, Any]:
    """The struct's fields, refusing any the builder never writes (a value of null is none)."""
    found = fields(obj, what)
    extra = sorted(key for key, value in found.items() if key not in allowed and value is not None)
    if extra:
        raise Refused(f"{what} field(s) {', '.join(extra)} are not allowed")
    return found


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refused(f"{what} must be a list")
    return value


def _number(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Refused(f"{what} must be a whole number, not {value!r}")
    return value


def _owner(labels: Mapping[str, Any]) -> tuple[str, str]:
    user, server = labels.get(LABEL_USER), labels.get(LABEL_SERVER, "")
    if not isinstance(user, str) or not user or not isinstance(server, str):
        raise Refused(f"a user's service must carry the label {LABEL_USER} (whose server it is)")
    return user, server


def _check_mode(mode: Any) -> None:
    spec = _only(mode, frozenset({"replicated"}), "Mode")  # never global: one task per node
    replicas = _number(
        fields(spec.get("replicated"), "Mode.Replicated").get("replicas"), "Replicas"
    )
    if "replicated" not in spec or replicas > 1:
        raise Refused("a user's service runs one replicated task")


def _check_endpoint(endpoint: Any) -> None:
    # Published ports would open the server on every node's (or the manager's) address.
    spec = _only(endpoint, frozenset({"mode", "ports"}), "EndpointSpec")
    if _list(spec.get("ports"), "EndpointSpec.Ports"):
        raise Refused("a user's service publishes no ports")


def _check_resources(raw: Any, swarm: SwarmLimits) -> None:
    res = _only(raw, frozenset({"limits", "reservations"}), "Resources")
    limits = _only(res.get("limits"), LIMIT_FIELDS, "Resources.Limits")
    reservations = _only(res.get("reservations"), RESERVATION_FIELDS, "Resources.Reservations")
    wanted = (
        ("memorybytes", "memory", swarm.max_memory, "bytes"),
        ("nanocpus", "CPU", int(swarm.max_cpus * NANO), "nano-CPUs"),
        ("pids", "process", swarm.max_pids, "processes"),
    )
    for key, what, most, unit in wanted:
        value = _number(limits.get(key), f"Limits.{key}")
        if most and not 0 < value <= most:
            raise Refused(f"the {what} limit must be set and at most {most} {unit}")
        if key in reservations:
            reserved = _number(reservations[key], f"Reservations.{key}")
            if reserved > (value or most or reserved):
                raise Refused(f"the {what} reservation is above the {what} limit")


def _check_placement(raw: Any, swarm: SwarmLimits) -> None:
    placement = _only(raw, PLACEMENT_FIELDS, "Placement")
    constraints = _list(placement.get("constraints"), "Placement.Constraints")
    if not all(isinstance(c, str) for c in constraints):
        raise Refused("placement constraints must be strings")
    # Constraints are ANDed: more only narrow where a server may run; the operator's must stay.
    normal = {c.replace(" ", "") for c in constraints}
    missing = [c for c in swarm.constraints if c.replace(" ", "") not in normal]
    if missing:
        raise Refused(f"the placement constraint(s) {', '.join(missing)} must stay")
    for preference in _list(placement.get("preferences"), "Placement.Preferences"):
        _only(preference, frozenset({"spread"}), "Placement.Preferences entry")


def _check_networks(raw: Any, limits: Limits) -> None:
    for entry in _list(raw, "TaskTemplate.Networks"):
        network = _only(entry, frozenset({"target", "aliases"}), "network attachment")
        target = network.get("target")
        if not isinstance(target, str) or target not in limits.networks:
            raise Refused(f"network {target!r} is not one the hub may use")


def volume_names(swarm: SwarmLimits, user: str, server: str, prefix: str) -> frozenset[str]:
    """The volumes the operator's templates give this user's server."""
    namespace = names.template_namespace(prefix, user, server)
    return frozenset(names.render(t, namespace) for t in swarm.volume_templates)


def _check_driver(raw: Any, swarm: SwarmLimits, namespace: Mapping[str, str]) -> None:
    """No DriverConfig (the local driver, no options), or exactly the configured one: the local
    driver's options alone can mount any host path or device of the node (type=none,o=bind)."""
    if raw is None:
        if swarm.volume_driver:
            raise Refused(f"volumes must use the driver {swarm.volume_driver!r}")
        return
    driver = _only(raw, frozenset({"name", "options"}), "DriverConfig")
    options = {key: names.render(value, namespace) for key, value in swarm.volume_options}
    if not swarm.volume_driver or (driver.get("name"), driver.get("options") or {}) != (
        swarm.volume_driver,
        options,
    ):
        raise Refused("a volume's DriverConfig must be the configured driver and options")


def _check_mount(raw: Any, swarm: SwarmLimits, owner: tuple[str, str], prefix: str) -> str:
    mount = _only(raw, MOUNT_FIELDS, "Mounts entry")
    kind = mount.get("type")
    if kind != "volume":  # bind: any host path on any node; tmpfs, npipe, cluster: never made
        raise Refused(f"mounts of type {kind!r} are not allowed (only the user's volumes)")
    source = mount.get("source")
    allowed = volume_names(swarm, *owner, prefix)
    if not isinstance(source, str) or source not in allowed:
        raise Refused(
            f"volume {source!r} is not one of this user's volumes ({', '.join(sorted(allowed))})"
        )
    options = _only(mount.get("volumeoptions"), VOLUME_OPTION_FIELDS, "VolumeOptions")
    labels = options.get("labels")
    check_labels(labels, Limits(prefix), "volumes")
    assert isinstance(labels, dict)
    if labels.get(LABEL_USER, "") not in {"", owner[0]}:
        raise Refused(f"volume {source!r} is labelled for another user")
    _check_driver(options.get("driverconfig"), swarm, names.template_namespace(prefix, *owner))
    return source


def _check_container(raw: Any, limits: Limits, swarm: SwarmLimits) -> list[str]:
    spec = _only(raw, CONTAINER_FIELDS, "ContainerSpec")
    image = spec.get("image")
    if image not in swarm.images:
        raise Refused(f"image {image!r} is not one of the allowed images")
    check_labels(spec.get("labels"), limits, "a user's service containers")
    caps = {str(c).upper().removeprefix("CAP_") for c in _list(spec.get("capabilityadd"), "Caps")}
    if extra := sorted(caps - SERVICE_CAPS):
        raise Refused(f"capabilities {', '.join(extra)} are not allowed (CapabilityAdd)")
    drop = {str(c).upper().removeprefix("CAP_") for c in _list(spec.get("capabilitydrop"), "Caps")}
    if "ALL" not in drop:
        raise Refused("a user's service must drop all capabilities (CapabilityDrop [ALL])")
    if (spec.get("user") or "") not in SERVICE_USERS:
        raise Refused(f"user {spec.get('user')!r} is not allowed (the image's, or root to start)")
    return _list(spec.get("mounts"), "Mounts")


def check_service_create(body: bytes, limits: Limits) -> tuple[str, str, list[str]]:
    """``POST /services/create``: (user, server, the named volumes it mounts)."""
    swarm = limits.swarm
    if swarm is None:
        raise Refused("Swarm services are not allowed on this engine")
    spec = _only(parse_json(body), SERVICE_FIELDS, "service spec")
    name = spec.get("name")
    if not isinstance(name, str) or not name or name in swarm.reserved_names:
        raise Refused(f"the service name {name!r} is not one a user's server may take")
    labels = spec.get("labels")
    check_labels(labels, limits, "a user's services")
    assert isinstance(labels, dict)
    if any(key.lower().startswith(DEPLOY_LABELS) for key in labels):
        raise Refused(f"a user's service carries no {DEPLOY_LABELS}* label")
    if labels.get(LABEL_ROLE) != ROLE_SINGLEUSER:  # what `berth down` and `status` look for
        raise Refused(f"a user's service carries the label {LABEL_ROLE}={ROLE_SINGLEUSER}")
    owner = _owner(labels)
    _check_mode(spec.get("mode"))
    _check_endpoint(spec.get("endpointspec"))
    task = _only(spec.get("tasktemplate"), TASK_FIELDS, "TaskTemplate")
    container = task.get("containerspec")
    if not isinstance(container, dict):
        raise Refused("a user's service needs a ContainerSpec")
    mounts = _check_container(container, limits, swarm)
    if _owner(fields(container, "ContainerSpec").get("labels") or {}) != owner:
        raise Refused("the service's and its containers' labels name different users")
    _check_resources(task.get("resources"), swarm)
    _check_placement(task.get("placement"), swarm)
    networks = task.get("networks")
    if not _list(networks, "TaskTemplate.Networks"):
        raise Refused("a user's service must be on the Berth network (TaskTemplate.Networks)")
    _check_networks(networks, limits)
    sources = [_check_mount(m, swarm, owner, limits.prefix) for m in mounts]
    return owner[0], owner[1], sources


def task_list_service(filters_json: str) -> str:
    """The one service a task listing asks about (``filters={"service": [name or ID]}``)."""
    try:
        filters = parse_json(filters_json.encode())
    except Refused as exc:
        raise Refused(f"task listing filters: {exc}") from exc
    if not isinstance(filters, dict) or "service" not in filters or set(filters) - TASK_FILTERS:
        raise Refused("a task listing must filter by one service (and at most desired-state)")
    services = filters["service"]
    if isinstance(services, dict):  # the engine's older form: {"name": true}
        services = [key for key, on in services.items() if on is True]
    if not isinstance(services, list) or len(services) != 1 or not isinstance(services[0], str):
        raise Refused("a task listing must filter by exactly one service")
    return services[0]


def task_list_query(filters_json: str, service_id: str) -> str:
    """The listing's filters with the service named by its full ID (the one that was judged)."""
    filters = parse_json(filters_json.encode())
    filters["service"] = [service_id]
    return json.dumps(filters, separators=(",", ":"))
