"""The Berth network's creation and the engine's DNS servers, as pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from docker.types import IPAMConfig, IPAMPool

from berth.deploy.network import (
    NetworkAddresses,
    bridge_name,
    network_addresses,
    network_create_kwargs,
    network_problems,
)


def test_network_addresses_keep_static_ones_out_of_the_dynamic_range() -> None:
    assert network_addresses("172.30.0.0/16") == NetworkAddresses(
        subnet="172.30.0.0/16",
        gateway="172.30.0.1",
        hub="172.30.0.2",
        proxy="172.30.0.3",
        dynamic="172.30.128.0/17",
    )
    assert network_addresses("192.168.32.0/20").dynamic == "192.168.40.0/21"
    with pytest.raises(ValueError, match="too small"):
        network_addresses("10.1.2.0/25")


def test_network_create_kwargs() -> None:
    assert network_create_kwargs("berth", "berth", "172.30.0.0/16") == {
        "name": "berth",
        "driver": "bridge",
        "options": {
            "com.docker.network.bridge.name": "berth",
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
        },
        "ipam": IPAMConfig(
            driver="default",
            pool_configs=[
                IPAMPool(subnet="172.30.0.0/16", iprange="172.30.128.0/17", gateway="172.30.0.1")
            ],
        ),
        "enable_ipv6": False,
        "check_duplicate": True,
        "labels": {"berth.managed": "true", "berth.role": "network"},
    }


def test_bridge_names() -> None:
    assert bridge_name("berth") == "berth"
    assert bridge_name("berth-fw-0a1b2c") == "berth-fw-0a1b2c"
    # Never Docker's own names, whatever the network is called.
    for network in ("docker0", "br-0123456789ab", "jupyterhub-network", "berth-much-too-long"):
        name = bridge_name(network)
        assert name.startswith("berth-") and len(name) == 15 and name != network


def test_an_existing_network_made_by_main_is_unfit() -> None:
    """main made the network as a plain bridge: `berth up` must notice and recreate it."""
    plain = {
        "Driver": "bridge",
        "Options": {},
        "IPAM": {"Config": [{"Subnet": "172.21.0.0/16", "Gateway": "172.21.0.1"}]},
        "EnableIPv6": False,
    }
    assert network_problems(plain, "berth") == [
        "bridge name is None, not 'berth'",
        "containers on it may reach one another (enable_icc is not false)",
        "it has no separate address range for user containers (ip_range)",
    ]
    fit = {
        "Driver": "bridge",
        "Options": network_create_kwargs("berth", "berth", "172.21.0.0/16")["options"],
        "IPAM": {"Config": [{"Subnet": "172.21.0.0/16", "IPRange": "172.21.128.0/17"}]},
    }
    assert network_problems(fit, "berth") == []


def test_the_engines_dns_servers_as_the_engine_picks_them(tmp_path: Path) -> None:
    """The daemon's own `dns` first; else resolv.conf, or systemd-resolved's list when it names
    only the local stub; loopback and IPv6 servers never (the engine cannot use them here)."""
    from berth.deploy.hostfacts import dns_resolvers

    daemon, resolv, systemd = (tmp_path / n for n in ("daemon.json", "resolv.conf", "systemd"))
    resolv.write_text("# comment\nsearch lan\nnameserver 10.255.255.53\nnameserver fd00::1\n")
    systemd.write_text("nameserver 192.168.1.1\nnameserver 192.168.1.1\n")
    assert dns_resolvers(daemon, resolv, systemd) == ("10.255.255.53",)  # no daemon.json
    daemon.write_text('{"live-restore": true}')
    assert dns_resolvers(daemon, resolv, systemd) == ("10.255.255.53",)
    daemon.write_text('{"dns": ["10.0.0.2", "127.0.0.1"]}')
    assert dns_resolvers(daemon, resolv, systemd) == ("10.0.0.2",)
    daemon.write_text("not json")
    resolv.write_text("nameserver 127.0.0.53\noptions edns0\n")
    assert dns_resolvers(daemon, resolv, systemd) == ("192.168.1.1",)
    systemd.unlink()
    assert dns_resolvers(daemon, resolv, systemd) == ()


def podman_record(**changes: object) -> dict:
    """Podman 4.3's own record of what network_create_kwargs asks for (seen on the engine)."""
    record = {
        "name": "berth",
        "driver": "bridge",
        "network_interface": "berth",
        "subnets": [
            {
                "subnet": "10.91.7.0/24",
                "gateway": "10.91.7.1",
                "lease_range": {"start_ip": "10.91.7.129", "end_ip": "10.91.7.255"},
            }
        ],
        "ipv6_enabled": False,
        "internal": False,
        "options": {"isolate": "true"},
    }
    return {**record, **changes}


def test_a_network_podman_made_as_asked_is_fit() -> None:
    from berth.deploy.network import podman_network_problems

    assert podman_network_problems(podman_record(), "berth") == []


def test_a_podman_network_without_the_bridge_name_or_the_range_is_unfit() -> None:
    """The firewall names the bridge, and trusts the lower half's fixed addresses: a bridge of
    another name, or user servers given addresses from the whole subnet, would undo both."""
    from berth.deploy.network import podman_network_problems

    whole = [{"subnet": "10.91.7.0/24", "gateway": "10.91.7.1"}]
    lower = [{**whole[0], "lease_range": {"start_ip": "10.91.7.2", "end_ip": "10.91.7.127"}}]
    assert podman_network_problems(
        podman_record(network_interface="podman1", subnets=whole, ipv6_enabled=True), "berth"
    ) == [
        "bridge name is 'podman1', not 'berth'",
        "it has no separate address range for user containers (ip_range)",
        "IPv6 is enabled (the firewall covers IPv4 only and drops IPv6)",
    ]
    assert podman_network_problems(podman_record(subnets=lower), "berth") == [
        "its ip_range is 10.91.7.2-10.91.7.127, not 10.91.7.128/25"
    ]
    assert podman_network_problems(podman_record(driver="macvlan", internal=True), "berth") == [
        "driver is 'macvlan', not 'bridge'",
        "it is internal (no route out for user servers)",
    ]


def test_the_engine_socket_and_bridge_filtering(tmp_path: Path) -> None:
    """The guard and berth-backup mount the socket DOCKER_HOST names (Podman's is elsewhere);
    on Podman, `berth up` refuses a host whose bridges bypass iptables."""
    import pytest

    from berth.deploy.hostfacts import engine_socket, require_bridge_filtering
    from berth.errors import BerthError

    assert engine_socket(None) == Path("/var/run/docker.sock")
    assert engine_socket("tcp://10.0.0.1:2375") == Path("/var/run/docker.sock")
    assert engine_socket("unix:///run/berth-podman/podman.sock") == Path(
        "/run/berth-podman/podman.sock"
    )
    setting = tmp_path / "bridge-nf-call-iptables"
    setting.write_text("1\n")
    require_bridge_filtering(setting)
    setting.write_text("0\n")
    with pytest.raises(BerthError, match="is 0: on Podman, Berth's firewall") as refused:
        require_bridge_filtering(setting)
    assert "modprobe br_netfilter" in (refused.value.hint or "")
    with pytest.raises(BerthError, match="missing \\(br_netfilter is not loaded\\)"):
        require_bridge_filtering(tmp_path / "absent")
