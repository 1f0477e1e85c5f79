"""User servers cannot reach one another, the hub's other ports or the host (issue 7).

The network is made exactly as `berth up` makes it (berth/deploy/network.py) and the firewall
runs in its container (berth/deploy/firewall.py). User B listens on many TCP and UDP ports on
0.0.0.0; from inside user A's container, as A's own user, hundreds of attempts go to B, to the
hub's ports other than its API, to every address of the host (a listener of our own on the
gateway, ports that containers published, the engine's ports) and to a container on another
Docker network. An attempt succeeds when TCP connects or a UDP echo answers; with the firewall
none succeeds, and none is even refused (every packet is dropped). Meanwhile A reaches the
hub's API and the hub reaches A and B.

`test_plain_network_is_open` is the attack on main's network (a plain bridge, no firewall): it
succeeds there, which shows that these probes would catch a regression. What user servers reach
beyond the host (the `egress` setting) is tested in test_egress.py.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from isolation_lab import (
    HUB_API_PORT,
    HostListener,
    Lab,
    Target,
    answered,
    host_addresses,
    lab,
    opened,
    probe,
    wait_all_listening,
    wait_for_log,
)

from berth.engine_kind import PODMAN

USER_PORTS = [8888, 8000, 8080, 6006, 5000, 3000, 9000, *range(20000, 20053)]  # 60
HUB_OTHER_PORTS = [8001, 8443]
HOST_PORTS = [22, 53, 80, 111, 443, 2375, 2376, 5432, 8081, 8443]  # ssh, dns, the engine, …
OTHER_PORT = 8000  # a container on Docker's default network publishes it


def wait_healthy(container: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        health = container.attrs["State"].get("Health", {})
        if health.get("Status") == "healthy":
            return
        assert time.monotonic() < deadline, health
        time.sleep(1)


def user_targets(address: str, ports: list[int]) -> list[Target]:
    return [(kind, address, port) for port in ports for kind in ("tcp", "udp")]


class Setting:
    """One isolated network with a hub stand-in, users A and B, and things on the host."""

    def __init__(self, the_lab: Lab) -> None:
        self.lab = the_lab
        network = the_lab.create_network()
        addresses = the_lab.addresses
        assert addresses is not None
        self.addresses = addresses
        gateway = addresses.gateway
        self.hub = the_lab.listener(
            "hub",
            [HUB_API_PORT, *HUB_OTHER_PORTS],
            [HUB_API_PORT, *HUB_OTHER_PORTS],
            ip=addresses.hub,
            ports={"8443/tcp": (gateway, None)},  # the real hub publishes its proxy port
        )
        self.b = the_lab.listener("b", USER_PORTS, USER_PORTS)
        self.a = the_lab.listener("a", [8888], [8888])
        # Another application's container, on Docker's default network, publishing a port on
        # an address of the host that A can route to.
        self.other = the_lab.listener(
            "other",
            [OTHER_PORT],
            [OTHER_PORT],
            network="bridge",
            ports={f"{OTHER_PORT}/tcp": (gateway, None), f"{OTHER_PORT}/udp": (gateway, None)},
        )
        self.host = HostListener(gateway)
        wait_all_listening([self.hub, self.b, self.a, self.other], timeout=120)
        for container in (self.hub, self.b, self.a, self.other):
            container.reload()
        self.b_ip = self.b.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        self.a_ip = self.a.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        # Its only network: Docker calls it `bridge`, Podman `podman`.
        (other_net,) = self.other.attrs["NetworkSettings"]["Networks"].values()
        self.other_ip = other_net["IPAddress"]

    def published(self, container: Any, key: str) -> int:
        return int(container.attrs["NetworkSettings"]["Ports"][key][0]["HostPort"])

    def attack_targets(self) -> list[Target]:
        """Everything A must not reach."""
        gateway = self.addresses.gateway
        hub_published = self.published(self.hub, "8443/tcp")
        other_tcp = self.published(self.other, f"{OTHER_PORT}/tcp")
        other_udp = self.published(self.other, f"{OTHER_PORT}/udp")
        broadcast = str(ipaddress.IPv4Network(self.addresses.subnet).broadcast_address)
        targets = user_targets(self.b_ip, USER_PORTS)
        # Not 8888: A's own listener would answer a broadcast to it.
        targets += [("udp", broadcast, port) for port in USER_PORTS[1:11]]
        targets += user_targets(self.addresses.hub, HUB_OTHER_PORTS)
        targets += [("udp", self.addresses.hub, HUB_API_PORT)]
        targets += [("tcp", self.addresses.proxy, port) for port in (8443, 8001)]
        targets += [
            ("tcp", gateway, self.host.tcp_port),
            ("udp", gateway, self.host.udp_port),
            ("tcp", gateway, hub_published),
            ("tcp", gateway, other_tcp),
            ("udp", gateway, other_udp),
        ]
        for address in sorted({gateway, *host_addresses()}):  # docker0 and eth0 too
            targets += user_targets(address, HOST_PORTS)
        targets += user_targets(self.other_ip, [OTHER_PORT])
        if self.lab.engine == PODMAN:  # the containers' resolver (aardvark-dns) is there
            targets = [t for t in targets if t[1:] != (gateway, 53)]
        return targets

    def close(self) -> None:
        self.host.close()


@pytest.fixture(scope="module")
def setting(docker_client: Any, fw_image: str, berth_image: str) -> Iterator[Setting]:
    the_lab = Lab(docker_client, fw_image, berth_image)
    assert not [line for line in the_lab.rules() if the_lab.bridge in line]
    the_setting = None
    try:
        the_setting = Setting(the_lab)
        the_lab.start_firewall()
        yield the_setting
    finally:
        if the_setting is not None:
            the_setting.close()
        the_lab.cleanup()
    # Every rule that names the bridge is gone: the firewall's, and Docker's with the network.
    assert [line for line in the_lab.rules() if the_lab.bridge in line] == []


def test_a_reaches_nothing_but_the_hub_api(setting: Setting) -> None:
    """Fails on main: there B's ports, the gateway and published ports all answer A."""
    targets = setting.attack_targets()
    assert len(targets) >= 200
    outcomes = probe(setting.a, targets)
    assert opened(outcomes) == []
    assert answered(outcomes) == []  # not even refused: every packet is dropped
    assert probe(setting.a, [("tcp", setting.addresses.hub, HUB_API_PORT)]) == {
        ("tcp", setting.addresses.hub, HUB_API_PORT): "open"
    }


def test_the_hub_reaches_every_user_port(setting: Setting) -> None:
    """The trusted addresses (hub, proxy) reach user servers; this also shows that B's
    listeners answer, so the attack test above could fail."""
    targets = user_targets(setting.b_ip, USER_PORTS) + user_targets(setting.a_ip, [8888])
    outcomes = probe(setting.hub, targets)
    assert [t for t, o in outcomes.items() if o != "open"] == []


def test_rules_are_kept_and_removed(setting: Setting) -> None:
    """A flushed chain comes back, a rule put above Berth's jumps goes below them; stopping
    the firewall leaves its rules in place (the host stays closed to A: before this change the
    rules went with the container, so every `berth up` that replaced the firewall opened the host
    and link-local addresses for a while); `remove` takes exactly its rules away, and then
    Docker's enable_icc=false still keeps A from B (fail closed). Podman has no such second
    layer: there A reaches B once the rules are removed, which is why nothing in `berth up` or
    `berth down` removes them."""
    lab_ = setting.lab
    assert lab_.spec is not None
    bridge, from_chain = lab_.bridge, lab_.spec.from_chain
    assert f"ip6tables-nft: -A {lab_.spec.v6_chain} -j DROP" in lab_.rules()
    wait_healthy(lab_.firewall, timeout=60)  # its healthcheck finds the rules in place
    # Someone flushes Berth's chain (and so opens nothing: icc=false holds meanwhile).
    lab_.iptables("-F", from_chain)
    wait_for_log(lab_.firewall, ["IPv4 rules re-applied"], timeout=40)
    outcomes = probe(setting.a, user_targets(setting.b_ip, USER_PORTS))
    assert answered(outcomes) == []
    # Someone puts a rule above Berth's jumps (on Podman: netavark's ACCEPT of the subnet):
    # it stays, but below them.
    chain = lab_.spec.forward_chain
    theirs = ["-i", bridge, "-p", "udp", "-m", "udp", "--dport", "9", "-j", "RETURN"]
    lab_.iptables("-I", chain, "1", *theirs)
    try:
        wait_for_log(lab_.firewall, [f"not the first rules of {chain}"], timeout=40)
        # This bridge's rules only: another Berth network's jumps (a deployment on this
        # engine) may sit above, harmlessly.
        jumps = [
            line
            for line in lab_.rules()
            if line.startswith(f"iptables-nft: -A {chain} ") and bridge in line
        ]
        assert jumps == [
            f"iptables-nft: -A {chain} -i {bridge} -j {from_chain}",
            f"iptables-nft: -A {chain} ! -i {bridge} -o {bridge} -j {lab_.spec.to_chain}",
            f"iptables-nft: -A {chain} {' '.join(theirs)}",
        ]
    finally:  # the host's rules are shared: never leave this one behind
        lab_.iptables("-D", chain, *theirs)

    logs = lab_.stop_firewall()
    assert "stay in place" in logs
    assert f"iptables-nft: -A {chain} -i {bridge} -j {from_chain}" in lab_.rules()
    gateway = setting.host.address
    host_targets = [
        ("tcp", gateway, setting.host.tcp_port),
        ("udp", gateway, setting.host.udp_port),
    ]
    assert answered(probe(setting.a, host_targets)) == []
    lab_.remove_rules()
    assert [line for line in lab_.rules() if "BERTH-" + bridge in line] == []
    outcomes = probe(setting.a, user_targets(setting.b_ip, USER_PORTS))
    if lab_.engine == PODMAN:
        assert opened(outcomes) != []
    else:
        assert opened(outcomes) == []


def test_plain_network_is_open(docker_client: Any, fw_image: str, berth_image: str) -> None:
    """The attack on main's network (a plain bridge): B's ports and the host answer A."""
    with lab(docker_client, fw_image, berth_image) as the_lab:
        network = the_lab.create_network(isolated=False)
        assert the_lab.addresses is not None
        b = the_lab.listener("b", USER_PORTS[:5], USER_PORTS[:5])
        a = the_lab.listener("a", [8888], [8888])
        host = HostListener(the_lab.addresses.gateway)
        try:
            wait_all_listening([a, b], timeout=120)
            b.reload()
            b_ip = b.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
            targets = [
                *user_targets(b_ip, USER_PORTS[:5]),
                ("tcp", the_lab.addresses.gateway, host.tcp_port),
                ("udp", the_lab.addresses.gateway, host.udp_port),
            ]
            assert sorted(opened(probe(a, targets))) == sorted(targets)
        finally:
            host.close()


@pytest.mark.full
def test_isolation_with_200_user_servers(
    docker_client: Any, fw_image: str, berth_image: str
) -> None:
    """200 user servers on one host: one of them reaches none of the 199 others (two TCP
    ports and one UDP port each), while the hub reaches all of them."""
    count, tcp, udp = 200, [8888, 8000], [8888]
    with lab(docker_client, fw_image, berth_image) as the_lab:
        network = the_lab.create_network()
        assert the_lab.addresses is not None
        hub = the_lab.listener("hub", [HUB_API_PORT, 8001], [], ip=the_lab.addresses.hub)
        the_lab.start_firewall()
        with ThreadPoolExecutor(16) as pool:
            users = list(
                pool.map(lambda i: the_lab.listener(f"user{i:03d}", tcp, udp), range(count))
            )
        wait_all_listening([hub, *users], timeout=600)
        for user in users:
            user.reload()
        ips = [u.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"] for u in users]
        scanner, others = users[0], ips[1:]
        targets = [("tcp", ip, port) for ip in others for port in tcp]
        targets += [("udp", ip, port) for ip in others for port in udp]
        targets += [("tcp", the_lab.addresses.hub, 8001), ("tcp", the_lab.addresses.gateway, 22)]
        outcomes = probe(scanner, targets)
        assert len(outcomes) >= 200
        assert opened(outcomes) == []
        assert answered(outcomes) == []
        hub_view = probe(hub, [("tcp", ip, 8888) for ip in ips])
        assert [t for t, o in hub_view.items() if o != "open"] == []
        assert opened(probe(scanner, [("tcp", the_lab.addresses.hub, HUB_API_PORT)])) != []


FORGE = r"""
import socket, sys
hub, b, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
results = []
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(2)
    s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: needs no capability
    s.bind((hub, 0))
    try:
        s.sendto(b"forged", (b, port)) if kind == socket.SOCK_DGRAM else s.connect((b, port))
        results.append("sent")
    except OSError as exc:
        results.append(f"error:{exc.errno}")
for make in (
    lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP),
    lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW),
    lambda: socket.socket().setsockopt(socket.SOL_IP, 19, 1),  # IP_TRANSPARENT
):
    try:
        make()
        results.append("allowed")
    except OSError as exc:
        results.append(f"error:{exc.errno}")
print(" ".join(results))
"""


def test_a_cannot_forge_the_hubs_address(setting: Setting) -> None:
    """The firewall trusts the hub's and the proxy's source addresses, so a user who could send
    packets from them would pass. As the spawner makes user containers (no capabilities), the
    kernel refuses every way to do it: a non-local source address (IP_FREEBIND), raw and
    packet sockets, IP_TRANSPARENT."""
    result = setting.a.exec_run(
        ["python3", "-c", FORGE, setting.addresses.hub, setting.b_ip, str(USER_PORTS[0])]
    )
    outcomes = result.output.decode().split()
    assert result.exit_code == 0
    assert outcomes == ["error:101", "error:101", "error:1", "error:1", "error:1"]
