"""What is running: the service's containers, user servers with age/memory/CPU; stopping it all,
finding logs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.volumes import Volume

from berth.config.schema import BerthConfig
from berth.deploy import accounts, inventory, layout
from berth.deploy.backup_status import backup_status
from berth.deploy.hub import SERVICE_CONTAINERS, current, current_hub, exec_accounts, read_file
from berth.deploy.plan import volume_names
from berth.deploy.tls_plan import acme_volume_name
from berth.errors import BerthError
from berth.labels import (
    LABEL_MANAGED,
    LABEL_PREFIX,
    LABEL_ROLE,
    LABEL_SERVER,
    LABEL_USER,
    ROLE_SINGLEUSER,
    ROLE_VOLUME_INIT,
)

# The engine's list filters (`client.containers.list(filters=...)`).
Filters = dict[str, str | list[str] | bool]

USER_SERVERS: Filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_ROLE}={ROLE_SINGLEUSER}"]}
INTERRUPTED_INITS: Filters = {
    "label": [
        f"{LABEL_MANAGED}=true",
        f"{LABEL_ROLE}={ROLE_VOLUME_INIT}",
        f"{LABEL_PREFIX}={layout.SPAWNER_PREFIX}",
    ]
}


def user_servers(network: str) -> Filters:
    """Filters for this deployment's user servers: Berth's, and on the deployment's network
    (another hub on the same engine has its own network, and its servers are left alone)."""
    return {**USER_SERVERS, "network": network}


@dataclass(frozen=True)
class ServerRow:
    user: str
    server: str
    state: str
    age: str
    memory: str
    cpu: str


# `berth logs --service NAME`: the service's containers by their short names.
SERVICES = {
    "hub": layout.HUB_CONTAINER,
    "proxy": layout.PROXY_CONTAINER,
    "guard": layout.GUARD_CONTAINER,
    "firewall": layout.FIREWALL_CONTAINER,
    "acme": layout.ACME_CONTAINER,
    "backup": layout.BACKUP_CONTAINER,
}


@dataclass(frozen=True)
class StatusReport:
    hub_state: str
    services: list[tuple[str, str]]  # (container, state) of each of the service's containers
    url: str
    servers: list[ServerRow]
    users: list[str] | None
    certificate: list[str] = field(default_factory=list)  # berth-acme's lines, when it runs
    backup: list[str] = field(default_factory=list)  # berth-backup's lines, when it runs


def human_age(started: str, now: dt.datetime | None = None) -> str:
    """`2h05m` style age from the engine's RFC 3339 StartedAt."""
    now = now or dt.datetime.now(dt.UTC)
    start = dt.datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
    seconds = max(0, int((now - start).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def usage(stats: dict[str, Any]) -> tuple[str, str]:
    """Memory (MiB) and CPU (% of one core) from one non-streamed stats sample."""
    memory = stats.get("memory_stats", {})
    used = memory.get("usage", 0) - memory.get("stats", {}).get("inactive_file", 0)
    cpu, pre = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
        "total_usage", 0
    )
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cores = cpu.get("online_cpus") or 1
    percent = (cpu_delta / system_delta * cores * 100) if system_delta > 0 else 0.0
    return f"{used / 2**20:.0f} MiB", f"{percent:.1f}%"


def _row(container: Container) -> ServerRow:
    labels = container.labels
    state = container.attrs["State"]
    age = human_age(state["StartedAt"]) if container.status == "running" else "-"
    memory, cpu = ("-", "-")
    if container.status == "running":
        with contextlib.suppress(APIError):
            # not streamed: one sample
            memory, cpu = usage(cast(dict[str, Any], container.stats(stream=False)))
    return ServerRow(
        labels.get(LABEL_USER, "?"),
        labels.get(LABEL_SERVER, ""),
        container.status,
        age,
        memory,
        cpu,
    )


def container_state(container: Container | None) -> str:
    if container is None:
        return "not created (run berth up)"
    health = container.attrs["State"].get("Health", {}).get("Status")
    return f"{container.status}" + (f", {health}" if health else "")


def certificate_lines(status: dict[str, Any]) -> list[str]:
    """berth-acme's status.json in words: what is served, until when, and what went wrong."""
    names = ", ".join(status.get("names", []))
    state = status.get("state", "?")
    serving = status.get("serving", "?")
    lines = [f"certificate: {state}; serving {serving}"
             + (f" (valid until {status['not_after']})" if status.get("not_after") else "")
             + f"; for {names} from {status.get('directory', '?')}"
             + (f" by {status['challenge']}" if status.get("challenge") else "")]  # fmt: skip
    if status.get("last_error"):
        lines.append(
            f"  last failure ({status.get('failures', 0)} in a row, {status.get('last_failure')}): "
            f"{status['last_error']}"
        )
    if status.get("next_attempt"):
        verb = "renews" if state == "valid" else "next attempt"
        lines.append(f"  {verb} at {status['next_attempt']}")
    return lines


def acme_status(client: docker.DockerClient) -> list[str]:
    container = current(client, layout.ACME_CONTAINER)
    if container is None:
        return []
    text = read_file(container, layout.ACME_STATUS_FILE)
    if not text:
        return ["certificate: berth-acme has not written its status yet"]
    try:
        return certificate_lines(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError):
        return ["certificate: berth-acme's status.json is unreadable"]


def gather(client: docker.DockerClient, cfg: BerthConfig) -> StatusReport:
    hub = current_hub(client)
    hub_state = container_state(hub)
    services = []
    for name in reversed(SERVICE_CONTAINERS):
        found = hub if name == layout.HUB_CONTAINER else current(client, name)
        if found is not None or name in (layout.HUB_CONTAINER, layout.PROXY_CONTAINER):
            services.append((name, container_state(found)))
    port = cfg.listen.port
    url = f"https://localhost{'' if port == 443 else f':{port}'}/"
    containers = client.containers.list(all=True, filters=user_servers(cfg.network))
    # stats() takes about a second per container; ask for all of them at once.
    with ThreadPoolExecutor(max_workers=8) as pool:
        servers = list(pool.map(_row, containers))
    users = None
    if hub is not None and hub.status == "running":
        try:
            users = sorted(user["name"] for user in exec_accounts(client, accounts.request("list")))
        except BerthError:
            users = None
    return StatusReport(
        hub_state, services, url, servers, users, acme_status(client), backup_status(client)
    )


# The order `berth down` stops the service's containers in, by role: the hub first, so it does
# not see the others go; the guard last (a role not listed goes just before it).
DOWN_ORDER = ("hub", "proxy", "firewall", "backup", "acme", "guard")


def down_order(found: list[dict[str, str]]) -> list[int]:
    """Which of the containers (by their labels) are the service's, in DOWN_ORDER: those with
    a `berth up` role label; never a user's server, whatever else it carries (pure)."""
    ours = [
        index
        for index, labels in enumerate(found)
        if layout.LABEL_ROLE in labels and labels.get(LABEL_ROLE) != ROLE_SINGLEUSER
    ]
    last = DOWN_ORDER.index("guard")

    def rank(index: int) -> float:
        role = found[index][layout.LABEL_ROLE]
        return DOWN_ORDER.index(role) if role in DOWN_ORDER else last - 0.5

    return sorted(ours, key=rank)


def stop_all(client: docker.DockerClient, network: str) -> int:
    """Stop and remove the service's containers (replaced ones kept as ``-previous`` too) and
    its user servers; return how many user servers stopped. The service's are found by their
    role label, never by name: a user called `hub` could have a server called `berth-hub`."""
    found = client.containers.list(all=True, filters={"label": layout.LABEL_ROLE})
    for index in down_order([dict(container.labels) for container in found]):
        container = found[index]
        try:
            container.stop(timeout=15)
            container.remove()
        except NotFound:
            pass
    servers = client.containers.list(all=True, filters=user_servers(network))
    # Volume-init containers (no network) that a hub killed mid-spawn left behind: they hold
    # their volume, which `down --delete-data` could then not delete.
    leftovers = client.containers.list(all=True, filters=INTERRUPTED_INITS)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: c.remove(force=True), [*servers, *leftovers]))
    return len(servers)


def data_volumes(client: docker.DockerClient, cfg: BerthConfig) -> list[Volume]:
    """This deployment's hub data volumes and its users' volumes (found by their labels, so
    any name template is covered: :mod:`berth.deploy.inventory`).

    Another deployment's volumes on the same engine are not included: their labels name
    another spawner prefix.
    """
    found = inventory.user_volumes(client)
    for name in (*volume_names(cfg), acme_volume_name(cfg)):
        with contextlib.suppress(NotFound):
            found.append(client.volumes.get(name))
    return list({volume.name: volume for volume in found}.values())


def container_for(
    client: docker.DockerClient, user: str | None, network: str, service: str = "hub"
) -> Container:
    """A user's server container, or else one of the service's containers (`SERVICES`)."""
    if user is None:
        if service not in SERVICES:
            raise BerthError(f"no service {service!r}: one of {', '.join(SERVICES)}")
        try:
            return client.containers.get(SERVICES[service])
        except NotFound:
            # On a Swarm (backend: swarm) the service's running task on this manager.
            tasks = client.containers.list(
                filters={"label": f"com.docker.swarm.service.name={SERVICES[service]}"}
            )
            if tasks:
                return tasks[0]
            raise BerthError(
                f"{SERVICES[service]} is not running", hint="start it with `berth up`"
            ) from None
    filters = user_servers(network)
    labels = cast(list[str], filters["label"])
    matches = client.containers.list(
        all=True, filters={**filters, "label": [*labels, f"{LABEL_USER}={user}"]}
    )
    if not matches:
        raise BerthError(f"no server container for user {user!r}")
    return matches[0]
