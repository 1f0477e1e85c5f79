"""Attacks from inside a user's server on the test Swarm, for the berth-fence tests of
test_swarm_spawner.py: what a server can connect to (code run in its kernel, through the proxy),
the targets a fenced server must not reach, and the rules in a server's network namespace.
"""

from __future__ import annotations

import json

from connect_probe import PROBE_FUNCTION

PROBE = (
    PROBE_FUNCTION
    + """
def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000":
            return socket.inet_ntoa(bytes.fromhex(fields[2])[::-1])
targets = dict(TARGETS, gateway_registry=(gateway(), 5000))
print(json.dumps({name: probe(*where) for name, where in targets.items()}))
"""
)


def server_ip(hub, user: str) -> str:
    route = hub.api("GET", "/proxy").json()[f"/user/{user}/"]["target"]
    return str(route.split("//", 1)[1].rsplit(":", 1)[0])


def attack_from(hub, cluster, user: str, targets: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Connect from inside ``user``'s server (code run in its kernel, through the proxy) to each
    target: {"b_server": "open" | "timeout" | "ConnectionRefusedError" | …}."""
    out = hub.execute(user, f"TARGETS = {targets!r}\n" + PROBE, timeout=120)
    return dict(json.loads(out.strip().splitlines()[-1]))


def node_container(cluster, user: str):
    """(node, container) of ``user``'s server, found on the node's own engine."""
    for node in cluster.nodes:
        found = node.client.containers.list(filters={"label": f"berth.user={user}"})
        if found:
            return node, found[0]
    raise AssertionError(f"no container of {user} on any node")


def netns_rules(cluster, user: str) -> str:
    node, container = node_container(cluster, user)
    container.reload()
    pid = str(container.attrs["State"]["Pid"])
    found = node.container.exec_run(["nsenter", "-t", pid, "-n", "iptables-nft", "-S"])
    return str(found.output.decode())


def attack_targets(cluster, ips: dict[str, str]) -> dict[str, tuple[str, int]]:
    return {
        "b_server": (ips["fence-b"], 8888),
        "b_own_port": (ips["fence-b"], 9999),
        "c_server_same_node": (ips["fence-c"], 8888),
        "hub_public_port": ("berth-swarm-hub", 8000),
        "registry": (cluster.manager.address, 5000),
        "manager_engine": (cluster.manager.address, 2375),
        "worker_engine": (cluster.nodes[1].address, 2375),
    }
