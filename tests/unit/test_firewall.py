"""The firewall's rules and its container, as pure functions."""

from __future__ import annotations

import pytest

from berth.deploy.firewall import (
    FirewallSpec,
    drift,
    hook_counts,
    render,
    render_removal,
    render_rules,
    ruleset_v4,
    ruleset_v6,
    spec_for_network,
)
from berth.deploy.firewall_container import firewall_container_kwargs, parse_spec, spec_arguments
from berth.deploy.network import network_addresses

SPEC = FirewallSpec(
    bridge="berth",
    subnet="172.30.0.0/16",
    trusted=("172.30.0.2",),
    hub_api=("172.30.0.2", 8081),
    relays=("172.30.0.3",),
)

EXPECTED_V4 = """\
*filter
:BERTH-berth-FROM - [0:0]
:BERTH-berth-TO - [0:0]
:BERTH-berth-HOST - [0:0]
-A BERTH-berth-FROM -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-berth-FROM -s 172.30.0.2/32 -o berth -j ACCEPT
-A BERTH-berth-FROM -s 172.30.0.2/32 -j RETURN
-A BERTH-berth-FROM -s 172.30.0.3/32 -o berth -p tcp -m tcp --dport 8888 -j ACCEPT
-A BERTH-berth-FROM -m conntrack --ctstate INVALID -j DROP
-A BERTH-berth-FROM -m conntrack --ctstate DNAT -j DROP
-A BERTH-berth-FROM -d 172.30.0.2/32 -o berth -p tcp -m tcp --dport 8081 -j ACCEPT
-A BERTH-berth-FROM -o berth -j DROP
-A BERTH-berth-FROM -d 0.0.0.0/8 -j DROP
-A BERTH-berth-FROM -d 10.0.0.0/8 -j DROP
-A BERTH-berth-FROM -d 100.64.0.0/10 -j DROP
-A BERTH-berth-FROM -d 127.0.0.0/8 -j DROP
-A BERTH-berth-FROM -d 169.254.0.0/16 -j DROP
-A BERTH-berth-FROM -d 172.16.0.0/12 -j DROP
-A BERTH-berth-FROM -d 192.0.0.0/24 -j DROP
-A BERTH-berth-FROM -d 192.0.2.0/24 -j DROP
-A BERTH-berth-FROM -d 192.88.99.0/24 -j DROP
-A BERTH-berth-FROM -d 192.168.0.0/16 -j DROP
-A BERTH-berth-FROM -d 198.18.0.0/15 -j DROP
-A BERTH-berth-FROM -d 198.51.100.0/24 -j DROP
-A BERTH-berth-FROM -d 203.0.113.0/24 -j DROP
-A BERTH-berth-FROM -d 224.0.0.0/4 -j DROP
-A BERTH-berth-FROM -d 240.0.0.0/4 -j DROP
-A BERTH-berth-FROM -d 168.63.129.16/32 -j DROP
-A BERTH-berth-FROM -j RETURN
-A BERTH-berth-TO -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A BERTH-berth-TO -d 172.30.0.2/32 -j RETURN
-A BERTH-berth-TO -d 172.30.0.3/32 -j RETURN
-A BERTH-berth-TO -j DROP
-A BERTH-berth-HOST -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A BERTH-berth-HOST -s 172.30.0.2/32 -j RETURN
-A BERTH-berth-HOST -j DROP
-I INPUT 1 -i berth -j BERTH-berth-HOST
-I DOCKER-USER 1 ! -i berth -o berth -j BERTH-berth-TO
-I DOCKER-USER 1 -i berth -j BERTH-berth-FROM
COMMIT
"""

# What `iptables -S` shows with the rules in place (Docker's own rules around them).
RUNNING = [
    "-P INPUT ACCEPT",
    "-P FORWARD DROP",
    "-N BERTH-berth-FROM",
    "-N BERTH-berth-HOST",
    "-N BERTH-berth-TO",
    "-N DOCKER-USER",
    "-A INPUT -i berth -j BERTH-berth-HOST",
    "-A FORWARD -j DOCKER-USER",
    *(line for line in EXPECTED_V4.splitlines() if line.startswith("-A BERTH-")),
    "-A DOCKER-USER -i berth -j BERTH-berth-FROM",
    "-A DOCKER-USER ! -i berth -o berth -j BERTH-berth-TO",
    "-A DOCKER-USER -i eth9 -j DROP",  # the operator's own rule: never touched
    "-A DOCKER-USER -j RETURN",
]


def test_rules_as_text() -> None:
    assert render_rules(SPEC) == EXPECTED_V4


# The FROM chain up to the egress rules: the same in every mode.
NETWORK_RULES = (
    "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-s 172.30.0.2/32 -o berth -j ACCEPT",
    "-s 172.30.0.2/32 -j RETURN",
    "-s 172.30.0.3/32 -o berth -p tcp -m tcp --dport 8888 -j ACCEPT",
    "-m conntrack --ctstate INVALID -j DROP",
    "-m conntrack --ctstate DNAT -j DROP",
    "-d 172.30.0.2/32 -o berth -p tcp -m tcp --dport 8081 -j ACCEPT",
    "-o berth -j DROP",
)


def from_chain(**changes: object) -> tuple[str, ...]:
    spec = FirewallSpec(**{**SPEC.__dict__, **changes})  # type: ignore[arg-type]
    rules = dict(ruleset_v4(spec).chains)["BERTH-berth-FROM"]
    assert rules[: len(NETWORK_RULES)] == NETWORK_RULES
    return rules[len(NETWORK_RULES) :]


def test_public_egress_drops_every_private_and_reserved_range_but_dns_and_the_allow_list() -> None:
    """The default. Fails on main, where user servers reached the LAN (10/8, 172.16/12,
    192.168/16), CGNAT and every reserved range: only link-local was dropped."""
    blocked = [line for line in EXPECTED_V4.splitlines() if line.endswith("-j DROP")]
    assert from_chain(allow=("10.1.2.0/24", "192.168.5.7"), resolvers=("10.0.0.2",)) == (
        "-d 10.1.2.0/24 -j RETURN",
        "-d 192.168.5.7/32 -j RETURN",
        "-d 10.0.0.2/32 -p udp -m udp --dport 53 -j RETURN",
        "-d 10.0.0.2/32 -p tcp -m tcp --dport 53 -j RETURN",
        *(line.removeprefix("-A BERTH-berth-FROM ") for line in blocked if "-d " in line),
        "-j RETURN",
    )


def test_no_egress_drops_everything_but_the_allow_list() -> None:
    """Not even DNS: the engine's resolver forwards through this chain, and DNS carries data."""
    assert from_chain(egress="none", resolvers=("10.0.0.2",)) == ("-j DROP",)
    assert from_chain(egress="none", allow=("10.1.2.0/24",)) == (
        "-d 10.1.2.0/24 -j RETURN",
        "-j DROP",
    )


def test_all_egress_drops_only_link_local_as_before() -> None:
    """Main's behaviour, but the engine's resolver is reachable on port 53 even on link-local
    (GCP's resolver is 169.254.169.254; its metadata port 80 stays closed)."""
    assert from_chain(egress="all") == ("-d 169.254.0.0/16 -j DROP", "-j RETURN")
    assert from_chain(egress="all", resolvers=("169.254.169.254",)) == (
        "-d 169.254.169.254/32 -p udp -m udp --dport 53 -j RETURN",
        "-d 169.254.169.254/32 -p tcp -m tcp --dport 53 -j RETURN",
        "-d 169.254.0.0/16 -j DROP",
        "-j RETURN",
    )


def test_the_blocked_ranges_are_every_non_public_ipv4_range() -> None:
    """Checked against Python's list of what is not globally reachable: every address that
    `ipaddress` calls private, reserved, multicast or unspecified lies in a blocked range."""
    import ipaddress

    from berth.deploy.firewall import BLOCKED_RANGES

    blocked = [ipaddress.IPv4Network(net) for net in BLOCKED_RANGES]
    samples = [
        "0.1.2.3", "10.9.9.9", "100.100.100.200", "127.0.0.1", "169.254.169.254",
        "172.31.255.1", "192.0.0.192", "192.0.2.2", "192.168.1.1", "198.18.0.1",
        "198.51.100.9", "203.0.113.5", "224.0.0.251", "239.255.255.250", "255.255.255.255",
        "240.0.0.1", "168.63.129.16",
    ]  # fmt: skip
    for sample in samples:
        address = ipaddress.IPv4Address(sample)
        assert any(address in net for net in blocked), sample
    for public in ("1.1.1.1", "151.101.0.223", "8.8.8.8", "100.128.0.1", "172.32.0.1"):
        address = ipaddress.IPv4Address(public)
        assert address.is_global and not any(address in net for net in blocked), public


def test_user_traffic_on_the_network_is_dropped_before_egress() -> None:
    """Order matters: the hub's API is the only new connection a user may open on the network,
    and NATed connections (published ports) are dropped before anything is let out."""
    rules = dict(ruleset_v4(SPEC).chains)["BERTH-berth-FROM"]
    api = rules.index("-d 172.30.0.2/32 -o berth -p tcp -m tcp --dport 8081 -j ACCEPT")
    assert rules.index("-m conntrack --ctstate DNAT -j DROP") < api
    assert rules.index("-o berth -j DROP") == api + 1
    assert rules[-1] == "-j RETURN"  # on to Docker's rules, which keep networks apart
    assert rules.index("-d 10.0.0.0/8 -j DROP") > api


def test_rules_in_place_show_no_drift() -> None:
    assert drift(ruleset_v4(SPEC), RUNNING) == []


def test_drift_names_what_changed() -> None:
    flushed = [line for line in RUNNING if not line.startswith("-A BERTH-berth-TO ")]
    doubled = [*RUNNING, "-A DOCKER-USER -i berth -j BERTH-berth-FROM"]
    unhooked = [line for line in RUNNING if line != "-A INPUT -i berth -j BERTH-berth-HOST"]
    assert drift(ruleset_v4(SPEC), flushed) == ["chain BERTH-berth-TO was changed"]
    assert drift(ruleset_v4(SPEC), doubled) == [
        "the jump '-i berth -j BERTH-berth-FROM' in DOCKER-USER is there 2 times"
    ]
    assert drift(ruleset_v4(SPEC), unhooked) == [
        "the jump '-i berth -j BERTH-berth-HOST' in INPUT is there 0 times"
    ]
    assert drift(ruleset_v4(SPEC), ["-P INPUT ACCEPT"]) == [
        "chain BERTH-berth-FROM is missing",
        "chain BERTH-berth-TO is missing",
        "chain BERTH-berth-HOST is missing",
        "the jump '-i berth -j BERTH-berth-FROM' in DOCKER-USER is there 0 times",
        "the jump '! -i berth -o berth -j BERTH-berth-TO' in DOCKER-USER is there 0 times",
        "the jump '-i berth -j BERTH-berth-HOST' in INPUT is there 0 times",
    ]


def test_a_rule_above_the_jumps_is_drift() -> None:
    """Something inserted at the top of DOCKER-USER (an ACCEPT) would decide before Berth."""
    above = list(RUNNING)
    above.insert(
        above.index("-A DOCKER-USER -i berth -j BERTH-berth-FROM"), "-A DOCKER-USER -j ACCEPT"
    )
    assert drift(ruleset_v4(SPEC), above) == [
        "Berth's jumps are not the first rules of DOCKER-USER"
    ]


def test_another_berth_networks_jumps_above_are_not_drift() -> None:
    """Two Berth firewalls on one host (a deployment and a test's): each one's jumps above the
    other's must not count, or they re-insert theirs over each other's every 10 s (they did)."""
    other = [
        "-A DOCKER-USER -i berth-x -j BERTH-berth-x-FROM",
        "-A DOCKER-USER ! -i berth-x -o berth-x -j BERTH-berth-x-TO",
    ]
    above = list(RUNNING)
    at = above.index("-A DOCKER-USER -i berth -j BERTH-berth-FROM")
    above[at:at] = other
    assert drift(ruleset_v4(SPEC), above) == []
    above.insert(at, "-A DOCKER-USER -j ACCEPT")
    assert drift(ruleset_v4(SPEC), above) == [
        "Berth's jumps are not the first rules of DOCKER-USER"
    ]


def test_re_applying_deletes_each_jump_as_often_as_it_is_there() -> None:
    """Idempotent: applied over rules already in place (even a doubled jump), the text leaves
    each jump exactly once at the top, and Berth's chains rewritten whole."""
    doubled = [*RUNNING, "-A DOCKER-USER -i berth -j BERTH-berth-FROM"]
    text = render(ruleset_v4(SPEC), hook_counts(ruleset_v4(SPEC), doubled))
    lines = text.splitlines()
    assert lines[lines.index("-A BERTH-berth-HOST -j DROP") + 1 : -1] == [
        "-D DOCKER-USER -i berth -j BERTH-berth-FROM",
        "-D DOCKER-USER -i berth -j BERTH-berth-FROM",
        "-D DOCKER-USER ! -i berth -o berth -j BERTH-berth-TO",
        "-D INPUT -i berth -j BERTH-berth-HOST",
        "-I INPUT 1 -i berth -j BERTH-berth-HOST",
        "-I DOCKER-USER 1 ! -i berth -o berth -j BERTH-berth-TO",
        "-I DOCKER-USER 1 -i berth -j BERTH-berth-FROM",
    ]


def test_removal_touches_only_berths_rules() -> None:
    assert render_removal(ruleset_v4(SPEC), RUNNING) == (
        "*filter\n"
        "-D DOCKER-USER -i berth -j BERTH-berth-FROM\n"
        "-D DOCKER-USER ! -i berth -o berth -j BERTH-berth-TO\n"
        "-D INPUT -i berth -j BERTH-berth-HOST\n"
        "-F BERTH-berth-FROM\n-F BERTH-berth-TO\n-F BERTH-berth-HOST\n"
        "-X BERTH-berth-FROM\n-X BERTH-berth-TO\n-X BERTH-berth-HOST\n"
        "COMMIT\n"
    )
    assert render_removal(ruleset_v4(SPEC), ["-P INPUT ACCEPT", "-N DOCKER-USER"]) == ""


def test_ipv6_on_the_bridge_is_dropped() -> None:
    assert render(ruleset_v6(SPEC)) == (
        "*filter\n"
        ":BERTH-berth-V6 - [0:0]\n"
        "-A BERTH-berth-V6 -j DROP\n"
        "-I INPUT 1 -i berth -j BERTH-berth-V6\n"
        "-I FORWARD 1 -o berth -j BERTH-berth-V6\n"
        "-I FORWARD 1 -i berth -j BERTH-berth-V6\n"
        "COMMIT\n"
    )


def test_chain_names_fit_iptables_for_the_longest_bridge() -> None:
    spec = FirewallSpec("b" * 15, "10.9.0.0/16", (), ("10.9.0.2", 8081))
    assert max(len(name) for name, _ in ruleset_v4(spec).chains) <= 28


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bridge": "br+"}, "not a bridge name"),
        ({"bridge": "a" * 16}, "not a bridge name"),
        ({"subnet": "172.30.0.1/16"}, "host bits set"),
        ({"trusted": ("10.0.0.2",)}, "not a container address"),
        ({"trusted": ("172.30.0.1",)}, "not a container address"),  # the gateway: the host
        ({"hub_api": ("172.30.255.255", 8081)}, "not a container address"),
        ({"hub_api": ("172.30.0.2", 0)}, "not a TCP port"),
        ({"egress": "open"}, "not one of public, none, all"),
        ({"egress": "all", "allow": ("10.0.0.0/8",)}, "no effect with egress 'all'"),
        ({"allow": ("10.1.2.3/24",)}, "host bits set"),
        ({"allow": ("fd00::/8",)}, "IPv4"),
        ({"resolvers": ("resolver",)}, "IPv4"),
    ],
)
def test_bad_specs_are_refused(changes: dict[str, object], message: str) -> None:
    fields = {**SPEC.__dict__, **changes}
    with pytest.raises(ValueError, match=message):
        FirewallSpec(**fields)  # type: ignore[arg-type]


def test_command_line_round_trip() -> None:
    closed = FirewallSpec("berth", "172.30.0.0/16", ("172.30.0.2",), ("172.30.0.2", 8081), "none")
    listed = FirewallSpec(
        "berth", "172.30.0.0/16", (), ("172.30.0.2", 8081), allow=("10.0.0.0/8", "10.2.0.1/32"),
        resolvers=("10.0.0.2", "169.254.169.254"),
    )  # fmt: skip
    for spec in (SPEC, closed, listed):
        assert parse_spec(["apply", *spec_arguments(spec)]) == ("apply", spec)
    assert spec_arguments(closed)[-2:] == ["--egress", "none"]
    assert spec_arguments(listed)[-6:] == [
        "--egress", "public",
        "--allow", "10.0.0.0/8,10.2.0.1/32",
        "--resolvers", "10.0.0.2,169.254.169.254",
    ]  # fmt: skip


def test_the_firewall_container() -> None:
    args = [
        "--bridge",
        "berth",
        "--subnet",
        "172.30.0.0/16",
        "--trusted",
        "172.30.0.2",
        "--hub-api",
        "172.30.0.2:8081",
        "--relays",
        "172.30.0.3",
        "--server-port",
        "8888",
        "--egress",
        "public",
    ]
    module = ["python3", "-m", "berth.deploy.firewall"]
    assert firewall_container_kwargs(SPEC, "berth/hub:latest") == {
        "image": "berth/hub:latest",
        "name": "berth-firewall",
        "command": [*module, "apply", *args],
        "user": "root",
        "network_mode": "host",
        "cap_drop": ["ALL"],
        "cap_add": ["NET_ADMIN"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/run": "rw,noexec,nosuid,size=1m", "/tmp": "rw,noexec,nosuid,size=16m"},
        "environment": {"PYTHONUNBUFFERED": "1"},
        "healthcheck": {
            "test": ["CMD", *module, "check", *args],
            "interval": 10_000_000_000,
            "timeout": 10_000_000_000,
            "start_period": 10_000_000_000,
            "retries": 2,
        },
        "mem_limit": "128m",
        "pids_limit": 64,
        "restart_policy": {"Name": "unless-stopped"},
        "labels": {"berth.managed": "true", "berth.role": "firewall"},
        "detach": True,
    }


def test_the_spec_of_a_planned_network() -> None:
    addresses = network_addresses("172.30.0.0/16")
    assert spec_for_network("berth", addresses, 8081) == SPEC
    assert spec_for_network(
        "berth", addresses, 8081, egress="none", allow=("10.0.0.0/8",), resolvers=("10.0.0.2",)
    ) == FirewallSpec(
        **{**SPEC.__dict__, "egress": "none", "allow": ("10.0.0.0/8",), "resolvers": ("10.0.0.2",)}
    )


def test_the_proxy_relays_to_servers_port_only_and_never_reaches_the_host() -> None:
    """Code running in the internet-facing proxy gets routing's reach, not the hub's: before
    this change the proxy was trusted like the hub (every port of every user server, the host)."""
    rules = render_rules(SPEC).splitlines()
    proxy = [line for line in rules if "172.30.0.3/32" in line]
    assert proxy == [
        "-A BERTH-berth-FROM -s 172.30.0.3/32 -o berth -p tcp -m tcp --dport 8888 -j ACCEPT",
        "-A BERTH-berth-TO -d 172.30.0.3/32 -j RETURN",  # its published port, from outside
    ]
