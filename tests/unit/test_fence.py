"""berth-fence's pure parts: the rules of a user server's namespace, whole; its service spec."""

from __future__ import annotations

import pytest

from berth.deploy import fence
from berth.deploy.egress_rules import BLOCKED_RANGES
from berth.deploy.fence import FenceSpec, NodeView
from berth.fence_signal import CANARY_RULE, WAIT_SCRIPT, wait_then

VIEW = NodeView(
    hub=("10.0.1.5",),
    relays=("10.0.1.7",),
    closed=("10.0.1.0/24", "172.18.0.0/16", "172.20.0.2/32"),
    resolvers=("10.3.0.1",),
)
EST = "-m conntrack --ctstate RELATED,ESTABLISHED"
HEAD = [
    "-d 127.0.0.1/32 -o lo -p udp -m udp --dport 1 -j DROP",
    "-o lo -j ACCEPT",
    f"{EST} -j ACCEPT",
    "-m conntrack --ctstate INVALID -j DROP",
    "-d 10.0.1.5/32 -p tcp -m tcp --dport 8081 -j ACCEPT",
]
DNS = [
    "-d 10.3.0.1/32 -p udp -m udp --dport 53 -j ACCEPT",
    "-d 10.3.0.1/32 -p tcp -m tcp --dport 53 -j ACCEPT",
]
CLOSED = ["-d 10.0.1.0/24 -j DROP", "-d 172.18.0.0/16 -j DROP", "-d 172.20.0.2/32 -j DROP"]
INTO = (
    "-i lo -j ACCEPT",
    f"{EST} -j ACCEPT",
    "-s 10.0.1.7/32 -p tcp -m tcp --dport 8888 -j ACCEPT",
    "-s 10.0.1.5/32 -p tcp -m tcp --dport 8888 -j ACCEPT",
    "-j DROP",
)
HOOKS = (("OUTPUT", "-j BERTH-FENCE-OUT"), ("INPUT", "-j BERTH-FENCE-IN"))


def test_public_egress_server_rules_whole() -> None:
    spec = FenceSpec(network="ov", hub="berth-hub", relays=("berth-proxy",), allow=("10.9.0.0/16",))
    v4, v6 = fence.server_rulesets(spec, VIEW)
    blocked = [f"-d {net} -j DROP" for net in BLOCKED_RANGES]
    out = (*HEAD, *DNS, *CLOSED, "-d 10.9.0.0/16 -j RETURN", *blocked, "-j RETURN")
    assert v4.chains == (("BERTH-FENCE-OUT", out), ("BERTH-FENCE-IN", INTO))
    assert v4.hooks == HOOKS
    assert v6.chains == (
        ("BERTH-FENCE-OUT", ("-o lo -j ACCEPT", "-j DROP")),
        ("BERTH-FENCE-IN", ("-i lo -j ACCEPT", "-j DROP")),
    )
    assert v6.hooks == HOOKS
    assert out[0] == CANARY_RULE  # first: what the server's wait looks for


def test_egress_none_drops_dns_too_and_all_still_closes_the_swarm() -> None:
    """With `all`, the private ranges are open, but never the overlay, gwbridge or nodes."""
    none, _ = fence.server_rulesets(FenceSpec(network="ov", hub="h", egress="none"), VIEW)
    assert none.chains[0][1] == (*HEAD, *CLOSED, "-j DROP")
    every, _ = fence.server_rulesets(FenceSpec(network="ov", hub="h", egress="all"), VIEW)
    link_local = "-d 169.254.0.0/16 -j DROP"
    assert every.chains[0][1] == (*HEAD, *DNS, *CLOSED, link_local, "-j RETURN")


def test_the_hub_without_a_separate_proxy_and_no_address_yet() -> None:
    """The hub's address unknown (not resolvable yet): nothing of the overlay is open."""
    spec = FenceSpec(network="ov", hub="hub")
    v4, _ = fence.server_rulesets(spec, NodeView(hub=(), closed=("10.0.1.0/24",)))
    assert v4.chains[1][1] == ("-i lo -j ACCEPT", f"{EST} -j ACCEPT", "-j DROP")
    assert "8081" not in " ".join(v4.chains[0][1])
    one, _ = fence.server_rulesets(spec, NodeView(hub=("10.0.1.5",), relays=("10.0.1.5",)))
    assert one.chains[1][1] == (
        "-i lo -j ACCEPT",
        f"{EST} -j ACCEPT",
        "-s 10.0.1.5/32 -p tcp -m tcp --dport 8888 -j ACCEPT",
        "-j DROP",
    )


def test_the_fence_closes_its_own_namespace() -> None:
    assert fence.own_ruleset().chains == (
        ("BERTH-FENCE-IN", ("-i lo -j ACCEPT", f"{EST} -j ACCEPT", "-j DROP")),
    )


def test_closed_networks_normalises_and_dedupes() -> None:
    found = fence.closed_networks(["10.0.1.7/24", "172.18.0.0/16"], ["172.20.0.2", "172.20.0.2"])
    assert found == ("10.0.1.0/24", "172.18.0.0/16", "172.20.0.2/32")


def test_bad_specs_and_views_are_refused() -> None:
    with pytest.raises(ValueError, match="egress"):
        FenceSpec(network="ov", hub="h", egress="most")
    with pytest.raises(ValueError, match="no effect"):
        FenceSpec(network="ov", hub="h", egress="all", allow=("10.0.0.0/8",))
    with pytest.raises(ValueError, match="TCP port"):
        FenceSpec(network="ov", hub="h", hub_port=0)
    with pytest.raises(ValueError, match="is not an IPv4 network"):
        FenceSpec(network="ov", hub="h", allow=("10.1.2.3/24",))
    with pytest.raises(ValueError):
        NodeView(hub=("berth-hub",))


def test_arguments_round_trip() -> None:
    spec = FenceSpec(
        network="ov", hub="berth-hub", hub_port=8081, relays=("berth-proxy",),
        server_port=8890, egress="none", allow=("10.9.0.0/16", "10.8.0.1/32"),
    )  # fmt: skip
    arguments = fence.spec_arguments(spec)
    assert arguments == [
        "--network", "ov", "--hub", "berth-hub:8081", "--relay", "berth-proxy",
        "--server-port", "8890", "--egress", "none", "--allow", "10.9.0.0/16,10.8.0.1/32",
    ]  # fmt: skip
    assert fence.parse_spec(arguments) == spec


def server(**over: object) -> dict:
    attrs: dict = {
        "Config": {"Labels": {"berth.managed": "true", "berth.role": "single-user"}},
        "NetworkSettings": {"Networks": {"ov": {}}},
        "State": {"Running": True},
    }
    attrs.update(over)
    return attrs


def test_which_containers_are_fenced() -> None:
    assert fence.is_user_server(server(), "ov")
    assert not fence.is_user_server(server(), "other")
    assert not fence.is_user_server(server(State={"Running": False}), "ov")
    hub = {"Labels": {"berth.managed": "true", "berth.role": "hub-data"}}
    assert not fence.is_user_server(server(Config=hub), "ov")


def test_fence_service_whole() -> None:
    spec = FenceSpec(network="ov", hub="berth-hub", relays=("berth-proxy",))
    kwargs = fence.fence_service_kwargs(
        spec, "mgr:5000/berth/hub:latest", service_labels={"a": "b"}
    )
    assert kwargs == {
        "name": "berth-fence",
        "labels": {"a": "b"},
        "mode": {"Global": {}},
        "endpoint_spec": {"Mode": "dnsrr"},
        "task_template": {
            "ContainerSpec": {
                "Image": "mgr:5000/berth/hub:latest",
                "Command": [
                    "python3",
                    "-m",
                    "berth.deploy.fence",
                    "--network",
                    "ov",
                    "--hub",
                    "berth-hub:8081",
                    "--relay",
                    "berth-proxy",
                    "--server-port",
                    "8888",
                    "--egress",
                    "public",
                ],
                "User": "root",
                "Env": ["PYTHONUNBUFFERED=1"],
                "CapabilityDrop": ["ALL"],
                "CapabilityAdd": ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"],
                "ReadOnly": True,
                "Mounts": [
                    {
                        "Type": "bind",
                        "Source": "/var/run/docker.sock",
                        "Target": "/var/run/docker.sock",
                        "ReadOnly": False,
                    },
                    {"Type": "bind", "Source": "/proc", "Target": "/host/proc", "ReadOnly": True},
                    {"Type": "bind", "Source": "/etc", "Target": "/host/etc", "ReadOnly": True},
                    {"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 1 << 20}},
                    {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 16 << 20}},
                ],
                "StopGracePeriod": 5_000_000_000,
                # Not the hub image's check (it asks for a hub): Swarm would kill the fence.
                "Healthcheck": {"Test": ["NONE"]},
            },
            "Resources": {"Limits": {"MemoryBytes": 128 << 20, "Pids": 64}},
            "RestartPolicy": {"Condition": "any", "Delay": 2_000_000_000},
            "Networks": [{"Target": "ov"}],
        },
    }


def test_the_wait_goes_in_front_of_the_command() -> None:
    assert wait_then(["start-notebook.py"], 60) == [
        "python3", "-c", WAIT_SCRIPT, "60", "start-notebook.py",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        wait_then([], 60)
