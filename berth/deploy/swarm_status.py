"""`berth status` on a Swarm: the service's services, the nodes, and each user server's node."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import docker

from berth.config.schema import BerthConfig
from berth.deploy import accounts
from berth.deploy.fence import FENCE_SERVICE
from berth.deploy.hub import current_hub, exec_accounts
from berth.deploy.swarm_fence import fence_state
from berth.deploy.swarm_plan import SERVICE_NAMES
from berth.deploy.swarm_up import current_service, manager_node, user_service_filters
from berth.errors import BerthError
from berth.spawner import specs


@dataclass(frozen=True)
class NodeRow:
    hostname: str
    role: str
    state: str
    availability: str
    servers: int  # user servers whose task runs there
    memory: str  # what the node offers the scheduler


@dataclass(frozen=True)
class SwarmServerRow:
    user: str
    server: str
    state: str
    node: str


@dataclass(frozen=True)
class SwarmReport:
    services: list[tuple[str, str]]  # (service, state of its task)
    nodes: list[NodeRow]
    servers: list[SwarmServerRow]
    users: list[str] | None


def current_task(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The task the Swarm wants running (the newest), else the newest of any."""
    wanted = [t for t in tasks if t.get("DesiredState") == "running"] or tasks
    return max(wanted, key=lambda t: t.get("CreatedAt", ""), default=None)


def node_rows(nodes: list[dict[str, Any]], running_on: dict[str, int]) -> list[NodeRow]:
    rows = []
    for node in nodes:
        memory = ((node.get("Description") or {}).get("Resources") or {}).get("MemoryBytes", 0)
        rows.append(
            NodeRow(
                hostname=(node.get("Description") or {}).get("Hostname", node["ID"][:12]),
                role=(node.get("Spec") or {}).get("Role", "?"),
                state=(node.get("Status") or {}).get("State", "?"),
                availability=(node.get("Spec") or {}).get("Availability", "?"),
                servers=running_on.get(node["ID"], 0),
                memory=f"{memory / 2**30:.1f} GiB",
            )
        )
    return sorted(rows, key=lambda row: row.hostname)


def gather(client: docker.DockerClient, cfg: BerthConfig) -> SwarmReport:
    manager_node(client)
    api = client.api
    nodes = api.nodes()
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname", n["ID"][:12]) for n in nodes}
    services = []
    for name in SERVICE_NAMES.values():
        found = current_service(client, name)
        state = "not created (run berth up)"
        if found is not None:
            task = current_task(api.tasks(filters={"service": found["ID"]}))
            status = (task or {}).get("Status") or {}
            state = status.get("State", "no task")
            if task and task.get("NodeID"):
                state += f" on {hostnames.get(task['NodeID'], task['NodeID'][:12])}"
        services.append((name, state))
    services.append((FENCE_SERVICE, fence_state(client, nodes)))
    servers: list[SwarmServerRow] = []
    running_on: dict[str, int] = {}
    for service in api.services(filters=user_service_filters()):
        labels = service["Spec"].get("Labels") or {}
        task = current_task(api.tasks(filters={"service": service["ID"]})) or {}
        state = (task.get("Status") or {}).get("State", "no task")
        node_id = task.get("NodeID", "")
        if state == "running":
            running_on[node_id] = running_on.get(node_id, 0) + 1
        servers.append(
            SwarmServerRow(
                labels.get(specs.LABEL_USER, "?"),
                labels.get(specs.LABEL_SERVER, ""),
                state,
                hostnames.get(node_id, node_id[:12] or "-"),
            )
        )
    users = None
    hub = current_hub(client)
    if hub is not None and hub.status == "running":
        with contextlib.suppress(BerthError):
            answer = exec_accounts(client, accounts.request("list"))
            users = sorted(user["name"] for user in answer)
    servers.sort(key=lambda row: (row.user, row.server))
    return SwarmReport(services, node_rows(nodes, running_on), servers, users)
