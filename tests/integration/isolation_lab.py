"""A Berth network built the way `berth up` builds it, with listeners and a prober, for the
isolation tests (tests/integration/test_isolation.py). The probes and listeners are in
isolation_probes.py (imported from here too, where the tests look for them).

Everything it creates is named `berth-fw-…`. Traffic goes only to containers on networks it
created and to the host's own addresses; every probe is bounded by a short timeout.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.types import IPAMConfig, IPAMPool
from engine_cleanup import remove_containers, remove_networks
from isolation_probes import LAN_HOST, LAN_TARGETS, LISTENER, Target, listen_ports

# Re-exported: test_isolation.py and test_deploy_isolation.py import them from here.
from isolation_probes import HostListener as HostListener
from isolation_probes import answered as answered
from isolation_probes import host_addresses as host_addresses
from isolation_probes import opened as opened
from isolation_probes import probe as probe
from run_once import run_once

from berth.deploy.firewall import FirewallSpec, spec_for_network
from berth.deploy.firewall_container import firewall_container_kwargs, spec_arguments
from berth.deploy.network import (
    NetworkAddresses,
    allocate_subnet,
    bridge_name,
    network_addresses,
    network_create_kwargs,
    network_problems,
    podman_network_problems,
)
from berth.engine_kind import PODMAN, engine_kind, podman_network
from berth.hub_container import HUB_API_PORT

PREFIX = "berth-fw-"
LABEL = "berth-fw-test"


@dataclass
class Lab:
    client: Any
    fw_image: str
    user_image: str
    name: str = field(default_factory=lambda: PREFIX + uuid.uuid4().hex[:6])
    containers: list[Any] = field(default_factory=list)
    networks: list[Any] = field(default_factory=list)
    addresses: NetworkAddresses | None = None
    spec: FirewallSpec | None = None
    firewall: Any = None

    @property
    def bridge(self) -> str:
        return bridge_name(self.name)

    @property
    def engine(self) -> str:
        return engine_kind(self.client)

    @property
    def forward_chain(self) -> str:
        """Where the firewall's forward jumps go on this engine (DOCKER-USER, or FORWARD)."""
        return "FORWARD" if self.engine == PODMAN else "DOCKER-USER"

    def create_network(self, isolated: bool = True) -> Any:
        """The Berth network as `berth up` makes it; or, with isolated=False, as main made it
        (a plain bridge), to show what the firewall changes."""
        if isolated:
            subnet = allocate_subnet(self.client, f"{self.name}-probe")
            network = self.client.networks.create(
                **network_create_kwargs(self.name, self.bridge, subnet)
            )
            network.reload()
            if self.engine == PODMAN:  # its compatible inspect leaves out what matters
                record = podman_network(self.client, self.name)
                assert podman_network_problems(record, self.bridge) == []
            else:
                assert network_problems(network.attrs, self.bridge) == []
            self.addresses = network_addresses(subnet)
            self.spec = spec_for_network(
                self.bridge, self.addresses, HUB_API_PORT, engine=self.engine
            )
        else:
            network = self.client.networks.create(
                self.name, driver="bridge", options={"com.docker.network.bridge.name": self.bridge}
            )
            network.reload()
            config = network.attrs["IPAM"]["Config"][0]
            self.addresses = network_addresses(config["Subnet"])
        self.networks.append(network)
        return network

    def run(self, role: str, command: list[str], ip: str | None = None, **kwargs: Any) -> Any:
        """A container on the lab's network, made like the spawner makes user servers."""
        kwargs.setdefault("network", self.name)
        if ip is not None:
            endpoint = self.client.api.create_endpoint_config(ipv4_address=ip)
            kwargs["networking_config"] = {self.name: endpoint}
        container = self.client.containers.create(
            kwargs.pop("image", self.user_image),
            command,
            name=f"{self.name}-{role}",
            labels={LABEL: self.name},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            detach=True,
            **kwargs,
        )
        self.containers.append(container)
        container.start()
        return container

    def listener(self, role: str, tcp: Iterable[int], udp: Iterable[int], **kwargs: Any) -> Any:
        return self.run(role, ["python3", "-c", LISTENER, listen_ports(tcp, udp)], **kwargs)

    def start_firewall(self, timeout: float = 90) -> Any:
        assert self.spec is not None
        kwargs = firewall_container_kwargs(self.spec, self.fw_image, name=f"{self.name}-firewall")
        kwargs["labels"] = {**kwargs["labels"], LABEL: self.name}
        self.firewall = self.client.containers.run(**kwargs)
        self.containers.append(self.firewall)
        wait_for_log(self.firewall, ["IPv4 rules for bridge", "IPv6 rules for bridge"], timeout)
        return self.firewall

    def stop_firewall(self) -> str:
        self.firewall.stop(timeout=20)
        return self.firewall.logs().decode()

    def _on_host(self, command: list[str], what: str) -> bytes:
        """Run ``command`` in the firewall image on the host's network, with NET_ADMIN only
        (as an operator, or the firewall's own tools, would)."""
        return run_once(
            self.client,
            self.fw_image,
            command,
            user="root",
            network_mode="host",
            cap_drop=["ALL"],
            cap_add=["NET_ADMIN"],
            labels={LABEL: self.name},
            name=f"{self.name}-{what}-{uuid.uuid4().hex[:4]}",
        )

    def iptables(self, *args: str) -> None:
        """Runs iptables on the host (as an operator or another tool would)."""
        self._on_host(["iptables-nft", *args], "iptables")

    def rules(self) -> list[str]:
        """The host's IPv4 and IPv6 filter rules, read with the firewall image's iptables."""
        lines = []
        for command in ("iptables-nft", "ip6tables-nft"):
            output = self._on_host([command, "-t", "filter", "-S"], "rules").decode()
            lines += [f"{command}: {line}" for line in output.splitlines()]
        return lines

    def remove_rules(self) -> None:
        """The firewall's own `remove`, for when its container did not stop cleanly."""
        if self.spec is None:
            return
        remove = ["python3", "-m", "berth.deploy.firewall", "remove", *spec_arguments(self.spec)]
        self._on_host(remove, "remove")

    def cleanup(self) -> None:
        errors = remove_containers(self.containers)
        try:
            self.remove_rules()
        except docker.errors.DockerException as exc:
            errors.append(f"rules: {exc}")
        errors += remove_networks(self.networks)
        if errors:
            raise RuntimeError("could not clean up: " + "; ".join(errors))


def wait_for_log(container: Any, needles: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        logs = container.logs().decode(errors="replace")
        container.reload()
        # Running too: a traceback may quote the script's source, needles and all.
        if all(needle in logs for needle in needles) and container.status == "running":
            return
        if container.status not in ("created", "running") or time.monotonic() > deadline:
            raise AssertionError(
                f"{container.name} did not get ready ({container.status}):\n{logs}"
            )
        time.sleep(0.5)


def wait_all_listening(containers: list[Any], timeout: float) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: wait_for_log(c, ["listening"], timeout), containers))


@contextmanager
def lab(client: Any, fw_image: str, user_image: str) -> Iterator[Lab]:
    the_lab = Lab(client, fw_image, user_image)
    try:
        yield the_lab
    finally:
        the_lab.cleanup()


LAN_PREFIX = "berth-egress-"


def host_routes() -> list[ipaddress.IPv4Network]:
    output = subprocess.run(
        ["ip", "-4", "route", "show"], capture_output=True, text=True, check=True
    ).stdout
    routes = [line.split()[0] for line in output.splitlines()]
    return [ipaddress.IPv4Network(r if r != "default" else "0.0.0.0/0") for r in routes]


@dataclass
class Lan:
    """Private networks standing for the host's LAN: Docker networks of our own (10.x,
    100.64/10 and 192.168.x subnets) with one host on all of them, routed to and from a lab's
    bridge by two DOCKER-USER rules each, as the host routes to its real LAN. Docker keeps its
    own networks apart (DOCKER-ISOLATION), which a real LAN is not; the rules only skip that,
    and sit below Berth's jumps, so Berth's chains decide first. On Podman (netavark keeps its
    networks apart from FORWARD's top) they go to the top of FORWARD, and the firewall, started
    after them, puts its jumps above them."""

    lab: Lab
    name: str = field(default_factory=lambda: LAN_PREFIX + uuid.uuid4().hex[:6])
    networks: list[Any] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # the LAN host's, one per network
    rules: list[list[str]] = field(default_factory=list)
    host: Any = None

    def create(self, first_octets: Iterable[str]) -> None:
        taken = host_routes()
        for index, prefix in enumerate(first_octets):
            for attempt in range(20):
                subnet = ipaddress.IPv4Network(
                    f"{prefix}.{(int(uuid.uuid4().hex[:2], 16) + attempt) % 256}.0/24"
                )
                if not any(subnet.overlaps(route) for route in taken if route.prefixlen):
                    break
            bridge = f"beg{self.name[-6:]}{index}"
            network = self.lab.client.networks.create(
                f"{self.name}-{index}",
                driver="bridge",
                options={"com.docker.network.bridge.name": bridge},
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]),
                labels={LABEL: self.name},
            )
            self.networks.append(network)
            self.addresses.append(str(subnet[10]))
            self.rules += [
                ["-i", self.lab.bridge, "-o", bridge, "-j", "ACCEPT"],
                ["-i", bridge, "-o", self.lab.bridge, "-m", "conntrack", "--ctstate",
                 "RELATED,ESTABLISHED", "-j", "ACCEPT"],
            ]  # fmt: skip
        first, *others = self.networks
        endpoint = self.lab.client.api.create_endpoint_config(ipv4_address=self.addresses[0])
        self.host = self.lab.client.containers.create(
            self.lab.user_image,
            ["python3", "-c", LAN_HOST],
            name=f"{self.name}-host",
            labels={LABEL: self.name},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            # Ports 53 and 80 without a capability: Docker sets this in every container,
            # Podman 4.3 does not.
            sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
            network=first.name,
            networking_config={first.name: endpoint},
            detach=True,
        )
        for network, address in zip(others, self.addresses[1:], strict=True):
            network.connect(self.host, ipv4_address=address)
        self.host.start()
        wait_for_log(self.host, ["listening"], 120)
        # Once the host runs: netavark then puts its jump that keeps networks apart at the
        # top of FORWARD, and these rules must come before it.
        for rule in self.rules:
            self.lab.iptables("-I", self.lab.forward_chain, "1", *rule)

    def targets(self, address: str) -> list[Target]:
        return [(kind, address, port) for kind, port in LAN_TARGETS]

    def cleanup(self) -> None:
        errors = []
        for rule in self.rules:
            try:
                self.lab.iptables("-D", self.lab.forward_chain, *rule)
            except docker.errors.DockerException as exc:
                errors.append(f"rule {rule}: {exc}")
        if self.host is not None:
            self.host.remove(force=True)
        for network in self.networks:
            try:
                network.remove()
            except docker.errors.APIError as exc:
                errors.append(f"{network.name}: {exc}")
        if errors:
            raise RuntimeError("could not clean up: " + "; ".join(errors))
