"""User servers of a real `berth up` deployment, as attackers: from inside alice's server, as
her own user, every port of bob's server, the hub's ports other than its API, the proxy's
API, the gateway and the host's other addresses, and the engine's socket. Nothing answers but
the hub's API (and, on Podman, the gateway's DNS, where aardvark-dns resolves containers'
names). Runs on both engines; on Podman it fails before this change (`berth up` refused the
network, and without Berth's rules in FORWARD netavark accepts everything from the subnet).

tests/integration/test_isolation.py attacks the same rules in a lab, port by port; this is
the deployment as an operator gets it (the guard has no network at all, so it is not a
target; its socket must not be in a user's container).
"""

from __future__ import annotations

import ipaddress

import pytest
from deployment import Deployment
from isolation_lab import answered, host_addresses, opened, probe

from berth.deploy import layout
from berth.deploy.network import network_addresses
from berth.engine_kind import PODMAN, engine_kind

pytestmark = pytest.mark.integration

USER_PORTS = [8888, 8000, 8080, 22, 80, 443, 5000, 9000]
HUB_OTHER_PORTS = [8000, 8001, 8443]  # the proxy's port and API, served on the proxy
HOST_PORTS = [22, 53, 80, 443, 2375, 2376, 8081, 8443]

SOCKETS = r"""
import os, socket
for path in ("/var/run/docker.sock", "/run/berth-engine/docker.sock",
             "/run/podman/podman.sock", "/run/berth-podman/podman.sock"):
    try:
        socket.socket(socket.AF_UNIX).connect(path)
        print(path, "connected")
    except OSError:
        print(path, "unreachable")
"""


def started(dep: Deployment, user: str) -> None:
    added = dep.berth("users", "add", user)
    assert added.returncode == 0, added.stderr
    dep.start_server(user)


def server_of(engine, user: str):
    (container,) = engine.containers.list(filters={"label": f"berth.user={user}"})
    return container


def address_on(container, network: str) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])


def test_a_user_server_reaches_only_the_hubs_api(hub_deployment: Deployment, engine) -> None:
    dep = hub_deployment
    network = dep.config["network"]
    started(dep, "mallory")
    started(dep, "bob")
    mallory, bob = server_of(engine, "mallory"), server_of(engine, "bob")
    hub, proxy = (engine.containers.get(n) for n in (layout.HUB_CONTAINER, layout.PROXY_CONTAINER))
    bob_ip, hub_ip, proxy_ip = (address_on(c, network) for c in (bob, hub, proxy))
    ipam = engine.networks.get(network).attrs["IPAM"]["Config"][0]
    gateway = str(ipam["Gateway"])
    # From the subnet's upper half: the range the firewall trusts nothing in.
    dynamic = ipaddress.IPv4Network(network_addresses(ipam["Subnet"]).dynamic)
    assert ipaddress.IPv4Address(address_on(mallory, network)) in dynamic

    targets = [(kind, bob_ip, port) for port in USER_PORTS for kind in ("tcp", "udp")]
    targets += [("tcp", hub_ip, port) for port in HUB_OTHER_PORTS]
    targets += [("tcp", proxy_ip, port) for port in HUB_OTHER_PORTS]
    for address in sorted({gateway, *host_addresses()}):
        targets += [(kind, address, port) for port in HOST_PORTS for kind in ("tcp", "udp")]
    if engine_kind(engine) == PODMAN:  # the containers' resolver (aardvark-dns) is there
        targets = [t for t in targets if t[1:] != (gateway, 53)]
    outcomes = probe(mallory, targets)
    assert opened(outcomes) == []
    assert answered(outcomes) == []  # dropped, not even refused

    # What she may reach, so that the probes above could have found something open.
    api = ("tcp", hub_ip, layout.HUB_API_PORT)
    assert probe(mallory, [api]) == {api: "open"}
    assert probe(proxy, [("tcp", bob_ip, 8888)]) == {("tcp", bob_ip, 8888): "open"}
    sockets = mallory.exec_run(["python3", "-c", SOCKETS]).output.decode().split("\n")
    assert [line for line in sockets if line.endswith(" connected")] == []
