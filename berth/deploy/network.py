"""The service's own Docker network: its bridge name, its addresses and how it is created.

The network is a bridge on which Docker itself drops container-to-container traffic
(`enable_icc=false`), with a fixed bridge name so the firewall's rules can name it
(berth/deploy/firewall.py). Its subnet is split in two: the engine hands addresses to user
containers only from the upper half (`ip_range`), and the hub and the proxy get static
addresses from the lower half, so no user container can ever hold an address the firewall
trusts, not even while the hub is being replaced.

Podman's Docker-compatible API makes the bridge with the name and the address range asked for,
but takes `enable_icc=false` only as netavark's `isolate` (networks apart, not the containers on
one) and reports none of the three back: `podman_network_problems` reads Podman's own record,
and on Podman the firewall drops the traffic between containers that `enable_icc` would.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from docker.types import IPAMConfig, IPAMPool

from berth import labels

OPTION_BRIDGE_NAME = "com.docker.network.bridge.name"
OPTION_ICC = "com.docker.network.bridge.enable_icc"
OPTION_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
MAX_BRIDGE_NAME = 15  # Linux interface names: IFNAMSIZ - 1
LARGEST_PREFIX = 24  # a /24 leaves 126 addresses for user containers; smaller is refused
_BRIDGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")


@dataclass(frozen=True)
class NetworkAddresses:
    subnet: str
    gateway: str  # the host's address on the bridge
    hub: str  # static
    proxy: str  # static
    dynamic: str  # the engine's ip_range for every other container (user servers)


def bridge_name(network: str) -> str:
    """The Linux bridge of a Berth network: the network's own name when it is one (`berth`),
    otherwise `berth-` and a hash of the name; never one of Docker's (`docker0`, `br-<id>`)."""
    if network.startswith("berth") and _BRIDGE_RE.match(network):
        return network
    return "berth-" + hashlib.sha256(network.encode()).hexdigest()[:9]


def check_bridge(name: str) -> str:
    if not _BRIDGE_RE.match(name):
        raise ValueError(
            f"{name!r} is not a bridge name Berth accepts: 1 to {MAX_BRIDGE_NAME} characters "
            "from A-Z a-z 0-9 _ . -, starting with a letter or digit"
        )
    return name


def network_addresses(subnet: str) -> NetworkAddresses:
    net = ipaddress.IPv4Network(subnet, strict=True)
    if net.prefixlen > LARGEST_PREFIX:
        raise ValueError(f"subnet {subnet} is too small: Berth needs a /{LARGEST_PREFIX} or larger")
    _, upper = net.subnets(prefixlen_diff=1)
    return NetworkAddresses(
        subnet=str(net),
        gateway=str(net[1]),
        hub=str(net[2]),
        proxy=str(net[3]),
        dynamic=str(upper),
    )


def network_create_kwargs(name: str, bridge: str, subnet: str) -> dict[str, Any]:
    """Keyword arguments of `client.networks.create` for a Berth network."""
    addresses = network_addresses(subnet)
    pool = IPAMPool(subnet=addresses.subnet, iprange=addresses.dynamic, gateway=addresses.gateway)
    return {
        "name": name,
        "driver": "bridge",
        "options": {
            OPTION_BRIDGE_NAME: check_bridge(bridge),
            OPTION_ICC: "false",
            OPTION_MASQUERADE: "true",
        },
        "ipam": IPAMConfig(driver="default", pool_configs=[pool]),
        "enable_ipv6": False,
        "check_duplicate": True,
        "labels": labels.managed(labels.ROLE_NETWORK),
    }


def network_problems(attrs: dict[str, Any], bridge: str) -> list[str]:
    """What makes an existing network (its `attrs`) unfit for isolation; empty when fit."""
    problems = []
    options = attrs.get("Options") or {}
    if attrs.get("Driver") != "bridge":
        problems.append(f"driver is {attrs.get('Driver')!r}, not 'bridge'")
    if options.get(OPTION_BRIDGE_NAME) != bridge:
        problems.append(f"bridge name is {options.get(OPTION_BRIDGE_NAME)!r}, not {bridge!r}")
    if options.get(OPTION_ICC) != "false":
        problems.append("containers on it may reach one another (enable_icc is not false)")
    configs = (attrs.get("IPAM") or {}).get("Config") or []
    if len(configs) != 1 or not configs[0].get("IPRange"):
        problems.append("it has no separate address range for user containers (ip_range)")
    else:
        try:
            expected = network_addresses(configs[0].get("Subnet", ""))
        except ValueError as exc:
            problems.append(str(exc))
        else:
            if configs[0]["IPRange"] != expected.dynamic:
                problems.append(f"its ip_range is {configs[0]['IPRange']}, not {expected.dynamic}")
    if attrs.get("EnableIPv6"):
        problems.append("IPv6 is enabled (the firewall covers IPv4 only and drops IPv6)")
    return problems


def podman_network_problems(record: dict[str, Any], bridge: str) -> list[str]:
    """What makes a network Podman made (its own record, berth.engine_kind.podman_network)
    unfit; empty when fit. Containers on one bridge are kept apart by the firewall there."""
    problems = []
    if record.get("driver") != "bridge":
        problems.append(f"driver is {record.get('driver')!r}, not 'bridge'")
    if record.get("network_interface") != bridge:
        problems.append(f"bridge name is {record.get('network_interface')!r}, not {bridge!r}")
    subnets = record.get("subnets") or []
    if len(subnets) != 1 or not subnets[0].get("lease_range"):
        problems.append("it has no separate address range for user containers (ip_range)")
    else:
        try:
            expected = ipaddress.IPv4Network(network_addresses(subnets[0]["subnet"]).dynamic)
        except (KeyError, ValueError) as exc:
            problems.append(f"its subnet is unfit: {exc}")
        else:
            lease = subnets[0]["lease_range"]
            first, last = lease.get("start_ip"), lease.get("end_ip")
            # Podman stores a CIDR range as its first and last address (the broadcast's too).
            if (first, last) != (str(expected[1]), str(expected[-1])) and (first, last) != (
                str(expected[0]),
                str(expected[-1]),
            ):
                problems.append(f"its ip_range is {first}-{last}, not {expected}")
    if record.get("ipv6_enabled"):
        problems.append("IPv6 is enabled (the firewall covers IPv4 only and drops IPv6)")
    if record.get("internal"):
        problems.append("it is internal (no route out for user servers)")
    return problems


def allocate_subnet(client: Any, probe_name: str) -> str:
    """A subnet the engine considers free (it honours the engine's default-address-pools):
    the engine allocates one for a throw-away network, which is removed again at once."""
    for leftover in client.networks.list(names=[probe_name]):  # from a run cut short
        if leftover.name == probe_name:  # the engine's name filter matches substrings
            leftover.remove()
    probe = client.networks.create(
        probe_name, driver="bridge", labels={labels.LABEL_MANAGED: "true"}
    )
    try:
        probe.reload()
        return str(probe.attrs["IPAM"]["Config"][0]["Subnet"])
    finally:
        probe.remove()
