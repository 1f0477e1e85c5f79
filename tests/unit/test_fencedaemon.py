"""berth-fence's view of its node, from a stand-in for the node's engine (no iptables here)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from berth.deploy import fencedaemon
from berth.deploy.fence import FenceSpec, NodeView

SPEC = FenceSpec(network="ov", hub="berth-hub", relays=("berth-proxy",))


class Networks:
    def __init__(self, subnets: dict[str, list[str]]) -> None:
        self.subnets = subnets

    def get(self, name: str) -> Any:
        if name not in self.subnets:
            raise docker.errors.NotFound(name)
        config = [{"Subnet": s} for s in self.subnets[name]]
        return SimpleNamespace(attrs={"IPAM": {"Config": config}})


class Node:
    def __init__(self) -> None:
        self.networks = Networks(
            {"ov": ["10.0.1.0/24", "fd00::/64"], "docker_gwbridge": ["172.18.0.0/16"]}
        )

    def info(self) -> dict[str, Any]:
        swarm = {
            "NodeAddr": "192.168.0.3",
            "RemoteManagers": [{"NodeID": "m", "Addr": "192.168.0.2:2377"}],
        }
        return {"Swarm": swarm}


def test_the_view_closes_overlay_gwbridge_and_swarm_addresses(monkeypatch) -> None:
    names = {"berth-hub": ("10.0.1.5",), "berth-proxy": ("10.0.1.7",)}
    monkeypatch.setattr(fencedaemon, "resolve", lambda name: names.get(name, ()))
    monkeypatch.setattr(fencedaemon.hostfacts, "dns_resolvers", lambda *paths: ("10.3.0.1",))
    view = fencedaemon.node_view(Node(), SPEC, None)  # type: ignore[arg-type]
    assert view == NodeView(
        hub=("10.0.1.5",),
        relays=("10.0.1.7",),
        closed=("10.0.1.0/24", "172.18.0.0/16", "192.168.0.3/32", "192.168.0.2/32"),
        resolvers=("10.3.0.1",),
    )


def test_a_name_that_does_not_resolve_keeps_the_last_addresses(monkeypatch) -> None:
    """The hub being replaced: its servers keep reaching the last address until the new one
    resolves, instead of losing the hub's API altogether."""
    monkeypatch.setattr(fencedaemon, "resolve", lambda name: ())
    monkeypatch.setattr(fencedaemon.hostfacts, "dns_resolvers", lambda *paths: ())
    last = NodeView(hub=("10.0.1.5",), relays=("10.0.1.7",))
    view = fencedaemon.node_view(Node(), SPEC, last)  # type: ignore[arg-type]
    assert (view.hub, view.relays) == (("10.0.1.5",), ("10.0.1.7",))
    assert fencedaemon.node_view(Node(), SPEC, None).hub == ()  # type: ignore[arg-type]


def test_no_process_is_refused_before_entering_anything() -> None:
    with pytest.raises(fencedaemon.FenceError, match="no process"):
        fencedaemon.fence_container({"State": {"Pid": 0}, "Id": "x"}, ())


def test_status_counts_the_ready_nodes_the_fence_runs_on(monkeypatch) -> None:
    from berth.deploy import swarm_fence, swarm_up

    tasks = [
        {"NodeID": "a", "Status": {"State": "running"}},
        {"NodeID": "b", "Status": {"State": "starting"}},
        {"NodeID": "c", "Status": {"State": "running"}},  # a node that is down
    ]
    client = SimpleNamespace(api=SimpleNamespace(tasks=lambda filters: tasks))
    nodes = [
        {"ID": i, "Status": {"State": s}}
        for i, s in (("a", "ready"), ("b", "ready"), ("c", "down"))
    ]
    monkeypatch.setattr(swarm_up, "current_service", lambda client, name: {"ID": "f"})
    assert swarm_fence.fence_state(client, nodes) == "running on 1 of 2 ready nodes"  # type: ignore[arg-type]
    monkeypatch.setattr(swarm_up, "current_service", lambda client, name: None)
    assert swarm_fence.fence_state(client, nodes) == "not created (run berth up)"  # type: ignore[arg-type]
