"""What a user server may open beyond Berth's own network (berth.yaml `egress:`), as iptables
rules: one list shared by the single-engine firewall (firewall.py, in the host's DOCKER-USER
chain) and the Swarm fence (fence.py, in each server's own network namespace).

"RETURN" means "goes on" (to Docker's own rules, or to the built-in chain's ACCEPT policy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

LINK_LOCAL = "169.254.0.0/16"
EGRESS_MODES = ("public", "none", "all")
# Destinations a user server may not open with `egress: public`: every IPv4 range that is not
# the public internet (IANA's special-purpose registry), and the metadata services that clouds
# put at public addresses. Docker networks of the engine are in these ranges too.
BLOCKED_RANGES = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # private (RFC 1918)
    "100.64.0.0/10",  # carrier-grade NAT (Alibaba's metadata service, Tailscale, …)
    "127.0.0.0/8",  # loopback
    LINK_LOCAL,  # link-local: the metadata service of AWS, GCP, Azure, OpenStack, …
    "172.16.0.0/12",  # private (RFC 1918)
    "192.0.0.0/24",  # IETF protocol assignments (Oracle Cloud's legacy metadata service)
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.88.99.0/24",  # 6to4 relays
    "192.168.0.0/16",  # private (RFC 1918)
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the broadcast address
    "168.63.129.16/32",  # Azure's WireServer (a public address)
)


def check_egress(mode: str, allow: Sequence[str]) -> None:
    """What the firewall's and the fence's specs check of `egress`: a known mode, and an allow
    list of IPv4 networks that the mode does not make pointless; ValueError otherwise."""
    if mode not in EGRESS_MODES:
        raise ValueError(f"egress {mode!r} is not one of {', '.join(EGRESS_MODES)}")
    if allow and mode == "all":
        raise ValueError("an allow list has no effect with egress 'all'")
    for network in allow:
        try:
            ipaddress.IPv4Network(network, strict=True)
        except ValueError as exc:
            raise ValueError(f"{network!r} is not an IPv4 network: {exc}") from None


def resolver_rules(resolvers: Sequence[str], verdict: str = "RETURN") -> list[str]:
    """DNS (port 53, UDP and TCP) to the engine's resolvers: the engine's DNS server forwards
    names it does not know from inside the container's network namespace."""
    return [
        f"-d {ip}/32 -p {proto} -m {proto} --dport 53 -j {verdict}"
        for ip in resolvers
        for proto in ("udp", "tcp")
    ]


def egress_tail(mode: str, allow: Sequence[str], resolvers: Sequence[str]) -> list[str]:
    """The end of a chain that sees what a user server sends beyond Berth's network: the
    `allow` list, then (unless `none`) DNS to the resolvers, then `mode`'s drops, then RETURN
    (with `none`: DROP)."""
    rules = [f"-d {ipaddress.IPv4Network(net)} -j RETURN" for net in allow]
    if mode == "none":
        return [*rules, "-j DROP"]
    # Without these, a resolver on the LAN (or on link-local, as on GCP) would leave user
    # servers without DNS.
    rules += resolver_rules(resolvers)
    blocked = BLOCKED_RANGES if mode == "public" else (LINK_LOCAL,)
    return [*rules, *(f"-d {net} -j DROP" for net in blocked), "-j RETURN"]
