"""What a user server reaches beyond the host: berth.yaml's `egress` setting (issue 7).

The network is made as `berth up` makes it and the firewall runs in its container, as in
test_isolation.py (tests/integration/isolation_lab.py); a LAN host stands on networks of the
engine's own. Each `egress` setting replaces the firewall as `berth up` does when the setting
changes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from isolation_lab import (
    HUB_API_PORT,
    Lab,
    Lan,
    Target,
    lab,
    opened,
    probe,
    wait_all_listening,
)

from berth.deploy.firewall import ruleset_v4

RESOLVE = r"""
import socket, sys
try:
    print(socket.gethostbyname(sys.argv[1]))
except OSError as exc:
    print(f"error: {exc}")
"""


def set_egress(the_lab: Lab, **changes: Any) -> None:
    """Replaces the firewall with one of another spec, as `berth up` does when berth.yaml's
    egress section changes (the old one's rules stay until the new one rewrites them)."""
    assert the_lab.spec is not None
    if the_lab.firewall is not None:
        the_lab.firewall.remove(force=True)
    the_lab.spec = dataclasses.replace(the_lab.spec, **changes)
    the_lab.start_firewall()


def test_egress_to_private_addresses(docker_client: Any, fw_image: str, berth_image: str) -> None:
    """User A's server and a host on the LAN (Docker networks of our own with 10.x, 100.64/10
    and 192.168.x subnets, routed like a real LAN): with `egress: all` (main's only behaviour)
    A reaches every LAN port; with the default `public` nothing answers but DNS on the engine's
    resolver, so names still resolve; `egress.allow` opens exactly its network; `none` closes
    even DNS. The hub's API answers A throughout. Fails on main, where the LAN answers A."""
    with lab(docker_client, fw_image, berth_image) as the_lab:
        the_lab.create_network()
        assert the_lab.addresses is not None and the_lab.spec is not None
        hub = the_lab.listener("hub", [HUB_API_PORT], [], ip=the_lab.addresses.hub)
        lan = Lan(the_lab)
        try:
            lan.create(["10.213", "100.72", "192.168"])
            resolver, allowed, _ = lan.addresses
            # A's names go to the LAN's resolver, as every container's go to the host's.
            a = the_lab.listener("a", [8888], [8888], dns=[resolver])
            wait_all_listening([hub, a], timeout=120)
            everything = [t for address in lan.addresses for t in lan.targets(address)]
            api = ("tcp", the_lab.addresses.hub, HUB_API_PORT)

            def reach() -> tuple[list[Target], str]:
                outcomes = probe(a, [*everything, api])
                assert outcomes.pop(api) == "open"
                assert set(outcomes.values()) <= {"open", "timeout"}, outcomes  # dropped
                name = a.exec_run(["python3", "-c", RESOLVE, "mirror.berth-egress.test"])
                return sorted(opened(outcomes)), name.output.decode().strip()

            set_egress(the_lab, egress="all", resolvers=(resolver,))
            assert reach() == (sorted(everything), "10.9.9.9")

            set_egress(the_lab, egress="public")
            dns = ("udp", resolver, 53)
            assert reach() == ([dns], "10.9.9.9")

            network = str(ipaddress.IPv4Network(f"{allowed}/24", strict=False))
            set_egress(the_lab, allow=(network,))
            assert reach() == (sorted([dns, *lan.targets(allowed)]), "10.9.9.9")
            # The rules as iptables shows them are the firewall's own, line for line (else
            # the firewall would rewrite them every 10 s).
            running = [
                line.removeprefix("iptables-nft: ")
                for line in the_lab.rules()
                if line.startswith(f"iptables-nft: -A {the_lab.spec.from_chain} ")
            ]
            chain = dict(ruleset_v4(the_lab.spec).chains)[the_lab.spec.from_chain]
            assert running == [f"-A {the_lab.spec.from_chain} {rule}" for rule in chain]

            set_egress(the_lab, egress="none", allow=())
            opened_now, name = reach()
            assert opened_now == [] and name.startswith("error"), name
        finally:
            lan.cleanup()
