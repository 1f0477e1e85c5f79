"""The firewall of the Berth network: user servers reach the hub's API and the internet, and
nothing else: not one another, not the hub's other ports, not the host.

Three layers, each closed on its own:

- the network itself (berth/deploy/network.py) is a bridge with `enable_icc=false`: Docker
  drops container-to-container traffic on it, even when the rules below are missing;
- Berth's chains, hooked at the top of Docker's DOCKER-USER chain (forwarded traffic) and of
  INPUT (traffic to the host's own addresses), let through only what is listed below;
- IPv6 on the bridge is dropped altogether (the network is IPv4-only).

On Podman (`engine="podman"`) the first layer is missing: netavark takes `enable_icc=false` only
as "keep networks apart" and accepts everything from the network's subnet in FORWARD, and there
is no DOCKER-USER chain to hook into. The forwarded-traffic jumps then sit at the top of
FORWARD itself (kept there by the daemon, as every jump is), the FROM chain's drop of what
stays on the network is what keeps user servers apart, which needs br_netfilter
(bridge-nf-call-iptables=1: the daemon's check fails without it), and the HOST chain lets
DNS (port 53) to the gateway through, where Podman's resolver (aardvark-dns) answers the
containers' queries, unless egress is `none`.

Forwarded traffic that comes from the bridge (`BERTH-<bridge>-FROM`):
  replies to allowed connections; anything from a trusted address (the hub) to the network;
  from a relay (the proxy) new TCP connections to user servers' port only; new connections to
  the hub's API (one address and TCP port); the rest of what stays
  on the network is dropped. Connections that Docker's NAT redirected (ports published on a host
  address) are dropped. What leaves the network then depends on `egress`:
  `public` (the default): DNS (port 53) to the resolvers the engine forwards to and the
  operator's `allow` list go on; every private or reserved range (`BLOCKED_RANGES`: the LAN,
  CGNAT, link-local and the clouds' metadata services, loopback, multicast, …) is dropped; the
  rest (the public internet) goes on. `none`: only the `allow` list goes on. `all`: resolvers,
  then link-local is dropped, and everything else goes on. "Goes on" is a RETURN to Docker's
  own rules, which keep Docker networks apart.
Forwarded traffic into the bridge from elsewhere (`BERTH-<bridge>-TO`): only replies, and new
  connections to trusted and relay addresses (Docker then admits only the ports it published).
Traffic from the bridge to the host (`BERTH-<bridge>-HOST`): only replies and the trusted
  address (the hub may need a database on the host); everything else is dropped, so the
  gateway, the host's other addresses and anything listening on them do not answer.

The rules do not depend on how many user servers there are. They are applied by
`python -m berth.deploy.firewall apply …` (this module is the entry point; its command line and
container are in berth/deploy/firewall_container.py, the daemon in berth/deploy/fwdaemon.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from berth.deploy.egress_rules import (
    BLOCKED_RANGES,
    EGRESS_MODES,
    LINK_LOCAL,
    check_egress,
    egress_tail,
)
from berth.deploy.network import NetworkAddresses, check_bridge
from berth.engine_kind import DOCKER, ENGINES, PODMAN

__all__ = ["BLOCKED_RANGES", "EGRESS_MODES", "LINK_LOCAL"]  # moved to egress_rules.py

Hook = tuple[str, str]  # (built-in or Docker chain, rule arguments that jump to our chain)

CHECK_INTERVAL_SECONDS = 10.0


@dataclass(frozen=True)
class FirewallSpec:
    bridge: str
    subnet: str
    trusted: tuple[str, ...]  # the hub: may open anything on the network, and reach the host
    hub_api: tuple[str, int]
    egress: str = "public"  # one of EGRESS_MODES: what user servers (and the proxy) may open
    # The proxy: may open connections to user servers' port only; no host, no other ports (code
    # running in an internet-facing proxy must not get the hub's reach).
    relays: tuple[str, ...] = ()
    server_port: int = 8888
    allow: tuple[str, ...] = ()  # IPv4 networks reachable whatever the mode (not with `all`)
    resolvers: tuple[str, ...] = ()  # the engine's DNS servers: port 53 open unless `none`
    engine: str = DOCKER  # or PODMAN: where the jumps go, and the gateway's DNS (above)

    def __post_init__(self) -> None:
        check_bridge(self.bridge)
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        net = ipaddress.IPv4Network(self.subnet, strict=True)
        for address in (*self.trusted, *self.relays, self.hub_api[0]):
            ip = ipaddress.IPv4Address(address)
            if ip not in net or ip in (net.network_address, net.broadcast_address, net[1]):
                raise ValueError(f"{address} is not a container address in {self.subnet}")
        for port in (self.hub_api[1], self.server_port):
            if not 0 < port < 65536:
                raise ValueError(f"{port} is not a TCP port")
        check_egress(self.egress, self.allow)
        for address in self.resolvers:
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IPv4 address") from None

    @property
    def from_chain(self) -> str:
        return f"BERTH-{self.bridge}-FROM"

    @property
    def to_chain(self) -> str:
        return f"BERTH-{self.bridge}-TO"

    @property
    def host_chain(self) -> str:
        return f"BERTH-{self.bridge}-HOST"

    @property
    def v6_chain(self) -> str:
        return f"BERTH-{self.bridge}-V6"

    @property
    def forward_chain(self) -> str:
        """Where the jumps for forwarded traffic go: Docker's chain for its users' rules, or
        (Podman has none) the top of FORWARD itself."""
        return "FORWARD" if self.engine == PODMAN else "DOCKER-USER"

    @property
    def gateway(self) -> str:
        return str(ipaddress.IPv4Network(self.subnet)[1])


def spec_for_network(
    bridge: str,
    addresses: NetworkAddresses,
    hub_api_port: int,
    egress: str = "public",
    server_port: int = 8888,
    allow: tuple[str, ...] = (),
    resolvers: tuple[str, ...] = (),
    engine: str = DOCKER,
) -> FirewallSpec:
    """The spec of a network planned by berth/deploy/network.py: the hub is trusted, the proxy
    relays to user servers' port, the hub's API is the one thing on the network user servers
    may open; beyond the network, `egress` decides."""
    return FirewallSpec(
        bridge=bridge,
        subnet=addresses.subnet,
        trusted=(addresses.hub,),
        hub_api=(addresses.hub, hub_api_port),
        egress=egress,
        relays=(addresses.proxy,),
        server_port=server_port,
        allow=allow,
        resolvers=resolvers,
        engine=engine,
    )


@dataclass(frozen=True)
class Ruleset:
    """Chains that belong to Berth (with their rules) and the hooks that jump to them."""

    chains: tuple[tuple[str, tuple[str, ...]], ...]
    hooks: tuple[Hook, ...]


ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED"


# Rules are written exactly as `iptables -S` prints them, so that the running rules can be
# compared with these line by line.
def ruleset_v4(spec: FirewallSpec) -> Ruleset:
    bridge = spec.bridge
    hub_ip, hub_port = spec.hub_api
    trusted = [f"{ip}/32" for ip in spec.trusted]
    relays = [f"{ip}/32" for ip in spec.relays]
    relay_to_servers = f"-o {bridge} -p tcp -m tcp --dport {spec.server_port} -j ACCEPT"
    from_rules = [
        f"{ESTABLISHED} -j ACCEPT",
        *(f"-s {ip} -o {bridge} -j ACCEPT" for ip in trusted),
        *(f"-s {ip} -j RETURN" for ip in trusted),
        *(f"-s {ip} {relay_to_servers}" for ip in relays),
        "-m conntrack --ctstate INVALID -j DROP",
        "-m conntrack --ctstate DNAT -j DROP",
        f"-d {hub_ip}/32 -o {bridge} -p tcp -m tcp --dport {hub_port} -j ACCEPT",
        f"-o {bridge} -j DROP",
        *egress_rules(spec),
    ]
    to_rules = [
        f"{ESTABLISHED} -j RETURN",
        *(f"-d {ip} -j RETURN" for ip in [*trusted, *relays]),
        "-j DROP",
    ]
    host_rules = [
        f"{ESTABLISHED} -j RETURN",
        *(f"-s {ip} -j RETURN" for ip in trusted),
        *gateway_dns_rules(spec),
        "-j DROP",
    ]
    return Ruleset(
        chains=(
            (spec.from_chain, tuple(from_rules)),
            (spec.to_chain, tuple(to_rules)),
            (spec.host_chain, tuple(host_rules)),
        ),
        hooks=(
            (spec.forward_chain, f"-i {bridge} -j {spec.from_chain}"),
            (spec.forward_chain, f"! -i {bridge} -o {bridge} -j {spec.to_chain}"),
            ("INPUT", f"-i {bridge} -j {spec.host_chain}"),
        ),
    )


def gateway_dns_rules(spec: FirewallSpec) -> list[str]:
    """On Podman, containers' names (the hub's among them) are resolved by aardvark-dns on the
    gateway: its port 53, unless egress is `none` (it forwards other names from the host, past
    the egress rules, and DNS carries data). Docker's resolver lives in each container."""
    if spec.engine != PODMAN or spec.egress == "none":
        return []
    return [
        f"-d {spec.gateway}/32 -p {proto} -m {proto} --dport 53 -j RETURN"
        for proto in ("udp", "tcp")
    ]


def egress_rules(spec: FirewallSpec) -> list[str]:
    """The end of the FROM chain: what leaves the network for elsewhere (RETURN: on to
    Docker's rules and out)."""
    return egress_tail(spec.egress, spec.allow, spec.resolvers)


def ruleset_v6(spec: FirewallSpec) -> Ruleset:
    """The network has no IPv6: drop any that appears on the bridge (link-local included)."""
    chain = spec.v6_chain
    return Ruleset(
        chains=((chain, ("-j DROP",)),),
        hooks=(
            ("FORWARD", f"-i {spec.bridge} -j {chain}"),
            ("FORWARD", f"-o {spec.bridge} -j {chain}"),
            ("INPUT", f"-i {spec.bridge} -j {chain}"),
        ),
    )


def render(ruleset: Ruleset, present: Mapping[Hook, int] | None = None) -> str:
    """iptables-restore --noflush text that makes the rules exactly `ruleset`, atomically.

    Declaring a chain empties it, so Berth's chains are rewritten whole; each hook is deleted as
    often as it is `present` and inserted once at the top of its chain.
    """
    present = present or {}
    lines = ["*filter"]
    lines += [f":{name} - [0:0]" for name, _ in ruleset.chains]
    lines += [f"-A {name} {rule}" for name, rules in ruleset.chains for rule in rules]
    for parent, rule in ruleset.hooks:
        lines += [f"-D {parent} {rule}"] * present.get((parent, rule), 0)
    # Inserted in reverse so that, at the top of each chain, they end up in the listed order.
    lines += [f"-I {parent} 1 {rule}" for parent, rule in reversed(ruleset.hooks)]
    return "\n".join([*lines, "COMMIT", ""])


def render_rules(spec: FirewallSpec, present: Mapping[Hook, int] | None = None) -> str:
    """The IPv4 filter table's text for `iptables-restore --noflush` (see `render`)."""
    return render(ruleset_v4(spec), present)


def render_removal(ruleset: Ruleset, lines: Sequence[str]) -> str:
    """Text that removes exactly Berth's hooks and chains found in `lines` (`iptables -S`);
    empty when there is nothing to remove."""
    present = hook_counts(ruleset, lines)
    existing = set(lines)
    commands = [
        f"-D {parent} {rule}" for (parent, rule), count in present.items() for _ in range(count)
    ]
    names = [name for name, _ in ruleset.chains if f"-N {name}" in existing]
    commands += [f"-F {name}" for name in names] + [f"-X {name}" for name in names]
    return "\n".join(["*filter", *commands, "COMMIT", ""]) if commands else ""


def hook_counts(ruleset: Ruleset, lines: Sequence[str]) -> dict[Hook, int]:
    counts = {hook: lines.count(f"-A {hook[0]} {hook[1]}") for hook in ruleset.hooks}
    return {hook: count for hook, count in counts.items() if count}


def drift(ruleset: Ruleset, lines: Sequence[str]) -> list[str]:
    """How the running rules (`iptables -S` lines) differ from `ruleset`; empty when equal."""
    problems = []
    for name, rules in ruleset.chains:
        if f"-N {name}" not in lines:
            problems.append(f"chain {name} is missing")
            continue
        running = [line for line in lines if line.startswith(f"-A {name} ")]
        if running != [f"-A {name} {rule}" for rule in rules]:
            problems.append(f"chain {name} was changed")
    counts = hook_counts(ruleset, lines)
    for hook in ruleset.hooks:
        if counts.get(hook, 0) != 1:
            count = counts.get(hook, 0)
            problems.append(f"the jump '{hook[1]}' in {hook[0]} is there {count} times")
    # First in their chains: a rule inserted above them (an ACCEPT) would decide before they do.
    # Another Berth network's jumps may sit above (its chains only RETURN or DROP traffic of
    # other bridges); counting them would make two firewalls on one host re-insert their
    # jumps over each other's every few seconds.
    for parent in dict.fromkeys(parent for parent, _ in ruleset.hooks):
        ours = [f"-A {parent} {rule}" for p, rule in ruleset.hooks if p == parent]
        running = [
            line
            for line in lines
            if line.startswith(f"-A {parent} ") and (line in ours or " -j BERTH-" not in line)
        ]
        if set(ours) <= set(running) and running[: len(ours)] != ours:
            problems.append(f"Berth's jumps are not the first rules of {parent}")
    return problems


if __name__ == "__main__":
    import sys

    # Through the imported modules, so that the daemon and this entry share one FirewallSpec.
    from berth.deploy import firewall_container, fwdaemon

    sys.exit(fwdaemon.main(*firewall_container.parse_spec(sys.argv[1:])))
