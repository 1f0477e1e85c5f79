"""berth-fence: the firewall of user servers on a Swarm, written inside each server.

On one engine, Berth's network is a bridge and its firewall sits in the host's DOCKER-USER
chain (firewall.py). On a Swarm, servers are spread over the nodes on an overlay network whose
traffic between nodes travels encapsulated (VXLAN) and, on one node, through a bridge inside
the overlay's own namespace: the host's chains see neither. So the fence writes the rules where
every packet of a server passes: the server's own network namespace. One `berth-fence` task
runs on every node (a global service); it watches its node's engine for Berth's user servers
and, for each, enters the server's network namespace through the node's /proc and makes its
INPUT and OUTPUT chains:

- OUTPUT: the canary (berth/fence_signal.py); loopback; replies; new TCP connections to the
  hub's API (its address and port); DNS to the engine's resolvers; then everything on the
  overlay, the node's docker_gwbridge and the Swarm's node addresses is dropped (other servers,
  the proxy's API, the registry on the manager's port 5000, the nodes' engines); what is left
  goes by berth.yaml's `egress` (egress_rules.py).
- INPUT: loopback; replies; new TCP connections to the server's port from the proxy and the
  hub; nothing else.
- IPv6: loopback only.

The rules live in the server's namespace, so they stay when the fence stops or is replaced, go
away with the server, and the user (no NET_ADMIN) cannot change them. The server starts its
command only once the canary says the rules are there (the Swarm spawner's wait), so no code
of the user's runs unfenced. The hub's and the proxy's addresses are found by name on the
overlay (the fence is attached to it) and followed when they change.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from berth import labels
from berth.deploy.egress_rules import EGRESS_MODES, check_egress, egress_tail, resolver_rules
from berth.deploy.firewall import ESTABLISHED, Ruleset
from berth.fence_signal import CANARY_RULE

FENCE_SERVICE = "berth-fence"
OUT_CHAIN, IN_CHAIN = "BERTH-FENCE-OUT", "BERTH-FENCE-IN"
HOST_PROC = "/host/proc"  # the node's /proc: every container's network namespace
HOST_ETC = "/host/etc"  # the node's /etc: the resolvers its engine forwards to
DOCKER_SOCKET = "/var/run/docker.sock"
CAPABILITIES = ("NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE")  # iptables; setns; open another's ns
CHECK_INTERVAL_SECONDS = 30.0  # a full check costs ~20 ms of CPU per server (measured)


@dataclass(frozen=True)
class FenceSpec:
    """What the operator decides (the same on every node)."""

    network: str  # the overlay network of the hub, the proxy and the users' servers
    hub: str  # the hub's name on the overlay
    hub_port: int = 8081
    relays: tuple[str, ...] = ()  # the proxy's name(s): may open the servers' port
    server_port: int = 8888
    egress: str = "public"
    allow: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for port in (self.hub_port, self.server_port):
            if not 0 < port < 65536:
                raise ValueError(f"{port} is not a TCP port")
        check_egress(self.egress, self.allow)
        if not self.network or not self.hub:
            raise ValueError("the fence needs the overlay network and the hub's name")


@dataclass(frozen=True)
class NodeView:
    """What one fence learns on its node and on the overlay; the rules follow from it."""

    hub: tuple[str, ...]  # the hub's current addresses on the overlay
    relays: tuple[str, ...] = ()  # the proxy's
    closed: tuple[str, ...] = ()  # networks no server may open: overlay, gwbridge, nodes
    resolvers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for address in (*self.hub, *self.relays, *self.resolvers):
            ipaddress.IPv4Address(address)
        for network in self.closed:
            ipaddress.IPv4Network(network, strict=True)


def closed_networks(subnets: Iterable[str], addresses: Iterable[str]) -> tuple[str, ...]:
    """Networks and single addresses (as /32) to drop, in order, without repeats."""
    found = [str(ipaddress.IPv4Network(s, strict=False)) for s in subnets]
    found += [f"{ipaddress.IPv4Address(a)}/32" for a in addresses]
    return tuple(dict.fromkeys(found))


def server_rulesets(spec: FenceSpec, view: NodeView) -> tuple[Ruleset, Ruleset]:
    """(IPv4, IPv6) rules of one user server's network namespace, as `iptables -S` prints
    them (see firewall.render / drift, which this shares)."""
    resolvers = view.resolvers if spec.egress != "none" else ()
    out = [
        CANARY_RULE,  # first: its drop is what the server's wait looks for
        "-o lo -j ACCEPT",
        f"{ESTABLISHED} -j ACCEPT",
        "-m conntrack --ctstate INVALID -j DROP",
        *(f"-d {ip}/32 -p tcp -m tcp --dport {spec.hub_port} -j ACCEPT" for ip in view.hub),
        *resolver_rules(resolvers, "ACCEPT"),
        # Before `allow`: an operator's 10.0.0.0/8 must not open the other servers.
        *(f"-d {net} -j DROP" for net in view.closed),
        *egress_tail(spec.egress, spec.allow, ()),
    ]
    peers = dict.fromkeys([*view.relays, *view.hub])
    into = [
        "-i lo -j ACCEPT",
        f"{ESTABLISHED} -j ACCEPT",
        *(f"-s {ip}/32 -p tcp -m tcp --dport {spec.server_port} -j ACCEPT" for ip in peers),
        "-j DROP",
    ]
    v4 = Ruleset(
        chains=((OUT_CHAIN, tuple(out)), (IN_CHAIN, tuple(into))),
        hooks=(("OUTPUT", f"-j {OUT_CHAIN}"), ("INPUT", f"-j {IN_CHAIN}")),
    )
    v6 = Ruleset(
        chains=(
            (OUT_CHAIN, ("-o lo -j ACCEPT", "-j DROP")),
            (IN_CHAIN, ("-i lo -j ACCEPT", "-j DROP")),
        ),
        hooks=v4.hooks,
    )
    return v4, v6


def own_ruleset() -> Ruleset:
    """The fence's own namespace (it is on the overlay to find the hub): nothing comes in."""
    rules = ("-i lo -j ACCEPT", f"{ESTABLISHED} -j ACCEPT", "-j DROP")
    return Ruleset(chains=((IN_CHAIN, rules),), hooks=(("INPUT", f"-j {IN_CHAIN}"),))


def is_user_server(attrs: dict[str, Any], network: str) -> bool:
    """A running Berth user server (any spawner prefix) attached to the fence's overlay."""
    config = attrs.get("Config") or {}
    found = config.get("Labels") or {}
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return (
        found.get(labels.LABEL_MANAGED) == "true"
        and found.get(labels.LABEL_ROLE) == labels.ROLE_SINGLEUSER
        and network in networks
        and bool((attrs.get("State") or {}).get("Running"))
    )


def server_filters() -> dict[str, Any]:
    """Engine filters for the containers the fence looks at (is_user_server decides)."""
    return {
        "label": [f"{labels.LABEL_MANAGED}=true", f"{labels.LABEL_ROLE}={labels.ROLE_SINGLEUSER}"]
    }


def spec_arguments(spec: FenceSpec) -> list[str]:
    arguments = ["--network", spec.network, "--hub", f"{spec.hub}:{spec.hub_port}"]
    for relay in spec.relays:
        arguments += ["--relay", relay]
    arguments += ["--server-port", str(spec.server_port), "--egress", spec.egress]
    if spec.allow:
        arguments += ["--allow", ",".join(spec.allow)]
    return arguments


def parse_spec(argv: Sequence[str]) -> FenceSpec:
    parser = argparse.ArgumentParser(prog="python -m berth.deploy.fence")
    parser.add_argument("--network", required=True, help="the overlay network")
    parser.add_argument("--hub", required=True, help="NAME:PORT of the hub's API")
    parser.add_argument("--relay", action="append", default=[], help="the proxy's name")
    parser.add_argument("--server-port", type=int, default=8888, help="user servers' port")
    parser.add_argument("--egress", choices=EGRESS_MODES, default="public")
    parser.add_argument("--allow", default="", help="CIDR[,CIDR…]: reachable in any mode")
    args = parser.parse_args(argv)
    hub, _, port = args.hub.rpartition(":")
    try:
        return FenceSpec(
            network=args.network,
            hub=hub,
            hub_port=int(port),
            relays=tuple(args.relay),
            server_port=args.server_port,
            egress=args.egress,
            allow=tuple(net for net in args.allow.split(",") if net),
        )
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: error() exits


def _bind(source: str, target: str, read_only: bool = True) -> dict[str, Any]:
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only}


def fence_service_kwargs(
    spec: FenceSpec, image: str, name: str = FENCE_SERVICE,
    service_labels: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`docker.APIClient.create_service` arguments of the fence: one task per node, on the
    overlay (to find the hub by name) but listening on nothing and closed to everyone; no
    published port, no virtual IP. It is root on its node (the node's engine socket, the
    node's /proc, SYS_ADMIN): nothing of the user's ever runs in it."""
    return {
        "name": name,
        "labels": dict(service_labels or {}),
        "mode": {"Global": {}},
        "endpoint_spec": {"Mode": "dnsrr"},
        "task_template": {
            "ContainerSpec": {
                "Image": image,
                "Command": ["python3", "-m", "berth.deploy.fence", *spec_arguments(spec)],
                "User": "root",
                "Env": ["PYTHONUNBUFFERED=1"],
                "CapabilityDrop": ["ALL"],
                "CapabilityAdd": list(CAPABILITIES),
                "ReadOnly": True,
                "Mounts": [
                    # The node's engine: which containers are user servers, and their PIDs.
                    _bind(DOCKER_SOCKET, DOCKER_SOCKET, read_only=False),
                    _bind("/proc", HOST_PROC),
                    _bind("/etc", HOST_ETC),
                    {"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 1 << 20}},
                    {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 16 << 20}},
                ],
                "StopGracePeriod": 5_000_000_000,
                # Not the hub image's check (it asks for a hub): Swarm would kill the fence.
                "Healthcheck": {"Test": ["NONE"]},
            },
            "Resources": {"Limits": {"MemoryBytes": 128 << 20, "Pids": 64}},
            "RestartPolicy": {"Condition": "any", "Delay": 2_000_000_000},
            "Networks": [{"Target": spec.network}],
        },
    }


if __name__ == "__main__":
    import sys

    from berth.deploy import fencedaemon

    sys.exit(fencedaemon.main(parse_spec(sys.argv[1:])))
