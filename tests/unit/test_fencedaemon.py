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
