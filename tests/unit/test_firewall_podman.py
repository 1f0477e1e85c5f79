"""The firewall's rules on Podman, as pure functions: where its jumps go (FORWARD's top, no
DOCKER-USER there), the gateway's DNS, drift under netavark's own jump, the command line."""

from __future__ import annotations

import pytest
from test_firewall import SPEC

from berth.deploy.firewall import (
    FirewallSpec,
    drift,
    hook_counts,
    render,
    ruleset_v4,
    ruleset_v6,
    spec_for_network,
)
from berth.deploy.firewall_container import parse_spec, spec_arguments
from berth.deploy.network import network_addresses

PODMAN_SPEC = FirewallSpec(**{**SPEC.__dict__, "engine": "podman"})


def test_on_podman_the_forward_jumps_top_forward_and_the_gateways_dns_is_open() -> None:
    """Podman has no DOCKER-USER chain, and netavark accepts the subnet's traffic further down
    FORWARD: Berth's jumps go to FORWARD's top. Containers' names resolve at aardvark-dns on the
    gateway, so the HOST chain lets port 53 there through (and nothing else). The chains that
    keep servers apart are Docker's, rule for rule (on Podman they are all there is)."""
    docker_v4, podman_v4 = ruleset_v4(SPEC), ruleset_v4(PODMAN_SPEC)
    assert podman_v4.hooks == (
        ("FORWARD", "-i berth -j BERTH-berth-FROM"),
        ("FORWARD", "! -i berth -o berth -j BERTH-berth-TO"),
        ("INPUT", "-i berth -j BERTH-berth-HOST"),
    )
    chains = dict(podman_v4.chains)
    assert chains["BERTH-berth-FROM"] == dict(docker_v4.chains)["BERTH-berth-FROM"]
    assert chains["BERTH-berth-TO"] == dict(docker_v4.chains)["BERTH-berth-TO"]
    assert chains["BERTH-berth-HOST"] == (
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-s 172.30.0.2/32 -j RETURN",
        "-d 172.30.0.1/32 -p udp -m udp --dport 53 -j RETURN",
        "-d 172.30.0.1/32 -p tcp -m tcp --dport 53 -j RETURN",
        "-j DROP",
    )
    assert ruleset_v6(PODMAN_SPEC) == ruleset_v6(SPEC)  # already in FORWARD on both


def test_on_podman_egress_none_closes_the_gateways_dns_too() -> None:
    """aardvark-dns forwards names it does not know from the host, past the egress rules."""
    closed = FirewallSpec(**{**PODMAN_SPEC.__dict__, "egress": "none"})
    assert dict(ruleset_v4(closed).chains)["BERTH-berth-HOST"] == (
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-s 172.30.0.2/32 -j RETURN",
        "-j DROP",
    )


def test_on_podman_a_rule_above_the_forward_jumps_is_drift() -> None:
    """netavark inserts its jump (NETAVARK_ISOLATION_1) at FORWARD's top when a network comes
    up, and dockerd its DOCKER-USER jump: the daemon puts Berth's back above them."""
    ruleset = ruleset_v4(PODMAN_SPEC)
    ours = [f"-A {parent} {rule}" for parent, rule in ruleset.hooks]
    running = [
        "-P FORWARD DROP",
        *(f"-N {name}" for name, _ in ruleset.chains),
        *(f"-A {name} {rule}" for name, rules in ruleset.chains for rule in rules),
        ours[2],
        ours[0],
        ours[1],
        '-A FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD',
    ]
    assert drift(ruleset, running) == []
    running.insert(running.index(ours[0]), "-A FORWARD -j NETAVARK_ISOLATION_1")
    assert drift(ruleset, running) == ["Berth's jumps are not the first rules of FORWARD"]
    assert render(ruleset, hook_counts(ruleset, running)).splitlines()[-4:] == [
        "-I INPUT 1 -i berth -j BERTH-berth-HOST",
        "-I FORWARD 1 ! -i berth -o berth -j BERTH-berth-TO",
        "-I FORWARD 1 -i berth -j BERTH-berth-FROM",
        "COMMIT",
    ]


def test_the_engine_on_the_command_line() -> None:
    """Docker's firewall keeps main's command line (an upgrade does not replace its container);
    Podman's says so."""
    assert "--engine" not in spec_arguments(SPEC)
    assert spec_arguments(PODMAN_SPEC)[-2:] == ["--engine", "podman"]
    assert parse_spec(["check", *spec_arguments(PODMAN_SPEC)]) == ("check", PODMAN_SPEC)
    assert spec_for_network("berth", network_addresses("172.30.0.0/16"), 8081, engine="podman") == (
        PODMAN_SPEC
    )
    with pytest.raises(ValueError, match="engine 'crio' is not one of docker, podman"):
        FirewallSpec(**{**SPEC.__dict__, "engine": "crio"})
