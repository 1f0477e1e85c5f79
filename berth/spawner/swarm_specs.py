"""Pure builders for the Swarm spawner: settings in, Docker Engine API service JSON out.

Nothing here talks to the engine. :func:`service_create_kwargs` returns the keyword arguments
for ``docker.APIClient.create_service`` with ``task_template`` and ``endpoint_spec`` as the
Engine API's own JSON (plain dicts), so tests compare whole dicts.

Differences from the container spawner that the Swarm API forces (engine API 1.41, Docker 20.10):

* a service cannot set ``no-new-privileges`` (``ContainerSpec.Privileges`` has no such field
  before API 1.46); capabilities are still all dropped unless a start switch needs some;
* swap cannot be limited separately; the memory limit is the cgroup's memory limit;
* named volumes are created by the engine of the node the task lands on, with Docker's copy of
  the image's directory into the empty volume (``NoCopy`` false): a hand-over container like the
  container spawner's cannot be run on a chosen node through the manager's API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from berth.fence_signal import EXIT_NOT_FENCED

from . import specs
from .progress import ProgressEvent

# Keyword arguments of docker.APIClient.create_service (what SwarmEngine.create_service takes).
ServiceCreateKwargs = dict[str, Any]
_Task = TypeVar("_Task", bound=Mapping[str, Any])

NANO = 10**9
VOLUME_POLICY_PIN = "pin"
VOLUME_POLICY_SHARED = "shared"


@dataclass(frozen=True)
class Placement:
    """Where the scheduler may put the task: ``node.labels.big == true`` style constraints, and
    spread preferences (``node.labels.rack``) over the default spread by task count."""

    constraints: Sequence[str] = ()
    spread: Sequence[str] = ()


@dataclass(frozen=True)
class VolumeDriver:
    """The driver named volumes are created with on whichever node the task runs."""

    name: str = "local"
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    identity: specs.Identity
    network_name: str
    command: Sequence[str] | None = None  # None: the image's CMD
    environment: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[specs.Mount] = ()
    volume_driver: VolumeDriver = VolumeDriver()
    resources: specs.Resources = field(default_factory=specs.Resources)
    privileges: specs.Privileges = field(default_factory=lambda: specs.Privileges(user=None))
    placement: Placement = Placement()
    stop_grace_seconds: int = 10
    pinned_node: str = ""  # node ID holding this user's local volumes ("" = anywhere)
    extra_task_template: Mapping[str, Any] = field(default_factory=dict)


def render_driver_options(
    options: Mapping[str, str], namespace: Mapping[str, str]
) -> dict[str, str]:
    """Volume driver options may use the name fields, e.g. ``device: ":/export/{username}"``."""
    from berth import names

    return {key: names.render(value, namespace) for key, value in options.items()}


def mount_json(
    mount: specs.Mount, driver: VolumeDriver, labels: Mapping[str, str]
) -> dict[str, Any]:
    """A service mount; a named volume the node creates carries ``labels`` (its owner)."""
    if mount.is_host_path:
        return {
            "Type": "bind",
            "Source": mount.source,
            "Target": mount.target,
            "ReadOnly": mount.read_only,
        }
    volume_options: dict[str, Any] = {"NoCopy": False, "Labels": dict(labels)}
    if driver.name != "local" or driver.options:
        volume_options["DriverConfig"] = {"Name": driver.name, "Options": dict(driver.options)}
    return {
        "Type": "volume",
        "Source": mount.source,
        "Target": mount.target,
        "ReadOnly": mount.read_only,
        "VolumeOptions": volume_options,
    }


def volume_labels(identity: specs.Identity, mount: specs.Mount) -> dict[str, str]:
    """As the container spawner labels the volumes it creates (see :mod:`.volume_policy`)."""
    if mount.per_user:
        return specs.labels(identity, role=specs.ROLE_VOLUME)
    nobody = specs.Identity("", "", identity.spawner, identity.prefix)
    return specs.labels(nobody, role=specs.ROLE_SHARED_VOLUME)


def resources_json(res: specs.Resources) -> dict[str, dict[str, int]]:
    limits: dict[str, int] = {}
    reservations: dict[str, int] = {}
    if res.mem_limit:
        limits["MemoryBytes"] = res.mem_limit
    if res.cpu_limit:
        limits["NanoCPUs"] = int(res.cpu_limit * NANO)
    if res.pids_limit:
        limits["Pids"] = res.pids_limit
    if res.mem_guarantee:
        reservations["MemoryBytes"] = res.mem_guarantee
    if res.cpu_guarantee:
        reservations["NanoCPUs"] = int(res.cpu_guarantee * NANO)
    return {"Limits": limits, "Reservations": reservations}


def placement_json(placement: Placement, pinned_node: str) -> dict[str, Any]:
    constraints = list(placement.constraints)
    if pinned_node:
        constraints.append(f"node.id=={pinned_node}")
    return {
        "Constraints": constraints,
        "Preferences": [{"Spread": {"SpreadDescriptor": d}} for d in placement.spread],
    }


def container_spec_json(spec: ServiceSpec) -> dict[str, Any]:
    labels = specs.labels(spec.identity)
    cs: dict[str, Any] = {
        "Image": spec.image,
        "Labels": labels,
        "Env": [f"{key}={value}" for key, value in spec.environment.items()],
        "Mounts": [
            mount_json(m, spec.volume_driver, volume_labels(spec.identity, m)) for m in spec.mounts
        ],
        "CapabilityDrop": ["ALL"],
        "CapabilityAdd": list(spec.privileges.cap_add),
        "Init": False,  # the images bring tini as PID 1
        # No health check: Swarm kills a task whose check fails (a server busy with a heavy
        # kernel, losing its unsaved work) and holds it in "starting" until the first check passes.
        # The hub watches its servers itself (readiness, poll).
        "Healthcheck": {"Test": ["NONE"]},
        "StopGracePeriod": spec.stop_grace_seconds * NANO,
    }
    if spec.command:
        cs["Args"] = list(spec.command)  # Args is the CMD; "Command" would replace ENTRYPOINT
    if spec.privileges.user is not None:
        cs["User"] = spec.privileges.user
    return cs


def task_template(spec: ServiceSpec) -> dict[str, Any]:
    template: dict[str, Any] = {
        "ContainerSpec": container_spec_json(spec),
        "Resources": resources_json(spec.resources),
        # One attempt: a server that dies is reported to the hub, never restarted behind its back
        # (possibly on another node, away from its data).
        "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
        "Placement": placement_json(spec.placement, spec.pinned_node),
        "Networks": [{"Target": spec.network_name}],
    }
    return specs.deep_merge(template, spec.extra_task_template)


def service_create_kwargs(spec: ServiceSpec) -> ServiceCreateKwargs:
    """Keyword arguments for ``docker.APIClient.create_service``."""
    return {
        "task_template": task_template(spec),
        "name": spec.name,
        "labels": specs.labels(spec.identity),
        "mode": {"Replicated": {"Replicas": 1}},
        # dnsrr: the hub reaches the task's own address; no virtual IP (needs IPVS) in between.
        "endpoint_spec": {"Mode": "dnsrr"},
    }


# -- task states -> progress and plain-words failures ---------------------------------------------

# Where each task state puts the spawn's progress bar, and what it says.
TASK_PROGRESS: dict[str, tuple[int, str]] = {
    "new": (30, "Service created; waiting for the scheduler"),
    "pending": (35, "Waiting for a node with room for this server"),
    "assigned": (45, "Assigned to node {node}"),
    "accepted": (50, "Node {node} accepted the server"),
    "preparing": (60, "Node {node} is preparing the server (pulling the image if needed)"),
    "ready": (70, "Node {node} has the image and volumes ready"),
    "starting": (75, "Starting on node {node}"),
    "running": (85, "Running on node {node}; waiting for the server to answer"),
}
TERMINAL_STATES = frozenset({"complete", "shutdown", "failed", "rejected", "remove", "orphaned"})

_SCHEDULER_REASONS = {
    "insufficient resources": "not enough free memory or CPU",
    "insufficient memory": "not enough free memory",
    "insufficient cpu": "not enough free CPU",
    "scheduling constraints not satisfied": "the placement rules are not met",
    "node is not active": "drained or paused",
    "node unavailable": "down",
    "unsupported platform": "the image's platform is not supported",
}


@dataclass(frozen=True)
class TaskView:
    """What the spawner needs from one task of the service."""

    state: str
    message: str = ""
    error: str = ""
    node_id: str = ""
    exit_code: int | None = None
    addresses: tuple[str, ...] = ()


def task_view(task: Mapping[str, Any], network_id: str = "") -> TaskView:
    """Read one task record (``GET /tasks``) into a :class:`TaskView`."""
    status = task.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    addresses: list[str] = []
    for attachment in task.get("NetworksAttachments") or []:
        network = attachment.get("Network") or {}
        if network_id and network.get("ID") != network_id:
            continue
        addresses.extend(a.split("/", 1)[0] for a in attachment.get("Addresses") or [])
    exit_code = container.get("ExitCode")
    return TaskView(
        state=str(status.get("State", "")),
        message=str(status.get("Message", "")),
        error=str(status.get("Err", "")),
        node_id=str(task.get("NodeID", "")),
        exit_code=int(exit_code) if exit_code is not None else None,
        addresses=tuple(addresses),
    )


def current_task(tasks: Sequence[_Task]) -> _Task | None:
    """The newest task (by creation time) of a one-replica service."""
    if not tasks:
        return None
    return max(tasks, key=lambda t: (str(t.get("CreatedAt", "")), int(t.get("Slot") or 0)))


def progress_event(view: TaskView, node_name: str = "", reserved: str = "") -> ProgressEvent | None:
    """The spawn-page event for a task state; ``None`` for terminal states."""
    found = TASK_PROGRESS.get(view.state)
    if found is None:
        return None
    progress, message = found
    text = message.format(node=node_name or view.node_id[:12] or "?")
    if view.state == "pending" and view.error:
        text = f"Waiting: {scheduler_reason(view.error, reserved)}"
    return {"progress": progress, "message": text}


def describe_reservation(res: specs.Resources) -> str:
    """``2 GiB of memory and 0.5 CPU``: what the scheduler must find free on one node."""
    parts = []
    if res.mem_guarantee:
        parts.append(f"{res.mem_guarantee / 1024**3:g} GiB of memory")
    if res.cpu_guarantee:
        parts.append(f"{res.cpu_guarantee:g} CPU")
    return " and ".join(parts)


def scheduler_reason(error: str, reserved: str = "") -> str:
    """``no suitable node (insufficient resources on 3 nodes)`` in plain words, keeping counts.

    ``reserved`` says what this server asks for (Swarm 20.10 does not say which resource is
    short). The scheduler's own text is kept at the end so an operator can search for it.
    """
    detail = error
    if "(" in error and error.endswith(")"):
        detail = error[error.index("(") + 1 : -1]
    parts = []
    for part in (p.strip() for p in detail.split(";")):
        plain = part
        for raw, words in _SCHEDULER_REASONS.items():
            if part.startswith(raw):
                plain = f"{words}{part[len(raw) :]}"
                break
        parts.append(plain)
    text = f"no node can run this server now: {'; '.join(parts)}"
    if reserved and "insufficient" in detail:
        text += f" (it reserves {reserved})"
    return f"{text} [scheduler: {error}]"


def failure_message(view: TaskView, node_name: str = "") -> str:
    """Why a task ended, in plain words, for a task in a terminal state."""
    where = f" on node {node_name or view.node_id[:12]}" if view.node_id else ""
    if view.state == "rejected":
        node = node_name or view.node_id[:12] or "?"
        return f"Node {node} could not start the server: {view.error or view.message}"
    if view.state == "failed" and view.exit_code == EXIT_NOT_FENCED:
        return (
            f"The server was not started{where}: berth-fence did not fence its network in "
            "time. Is the berth-fence service running on every node? (docs/deploy.md)"
        )
    if view.state == "failed":
        if view.exit_code is not None and view.exit_code == 137:
            return (
                f"The server was killed{where} (exit status 137: out of memory or killed); "
                f"{view.error}"
            )
        if view.exit_code:
            return f"The server exited{where} with status {view.exit_code}: {view.error}"
        return f"The server failed{where}: {view.error or view.message}"
    if view.state == "orphaned":
        return f"The node{where} is unreachable; the server is lost"
    return f"The server stopped{where} (task {view.state}: {view.error or view.message})"
