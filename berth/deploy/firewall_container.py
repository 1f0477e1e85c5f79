"""The firewall's container and its command line: how `berth up` runs the rules of
berth/deploy/firewall.py, and how the container reads them back.

The rules are applied by `python -m berth.deploy.firewall apply …` (berth/deploy/fwdaemon.py) in
a container of the hub image with the host's network and NET_ADMIN only, which re-applies them
when they are changed. Stopping it leaves them in place (a `berth up` that replaces the firewall,
or a crash, must not open the host to user servers for a moment); `… remove` takes exactly its
own rules away. The entry point stays in firewall.py: the command is part of the container's
fingerprint, and a new one would replace every running firewall.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from berth import labels
from berth.deploy.egress_rules import EGRESS_MODES
from berth.deploy.firewall import FirewallSpec
from berth.engine_kind import DOCKER, ENGINES

HEALTH_INTERVAL_NS = 10_000_000_000


def spec_arguments(spec: FirewallSpec) -> list[str]:
    arguments = [
        "--bridge",
        spec.bridge,
        "--subnet",
        spec.subnet,
        "--trusted",
        ",".join(spec.trusted),
        "--hub-api",
        f"{spec.hub_api[0]}:{spec.hub_api[1]}",
    ]
    if spec.relays:
        arguments += ["--relays", ",".join(spec.relays), "--server-port", str(spec.server_port)]
    arguments += ["--egress", spec.egress]
    if spec.allow:
        arguments += ["--allow", ",".join(spec.allow)]
    if spec.resolvers:
        arguments += ["--resolvers", ",".join(spec.resolvers)]
    if spec.engine != DOCKER:  # Docker's firewall keeps main's command (and container)
        arguments += ["--engine", spec.engine]
    return arguments


def firewall_container_kwargs(
    spec: FirewallSpec, image: str, name: str = "berth-firewall"
) -> dict[str, Any]:
    """`client.containers.run/create` arguments of the long-running firewall container.

    It needs the host's network namespace (the rules live there) and NET_ADMIN, nothing else:
    no engine socket, no volume, a read-only root file system.
    """
    module = ["python3", "-m", "berth.deploy.firewall"]
    return {
        "image": image,
        "name": name,
        "command": [*module, "apply", *spec_arguments(spec)],
        "user": "root",
        "network_mode": "host",
        "cap_drop": ["ALL"],
        "cap_add": ["NET_ADMIN"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/run": "rw,noexec,nosuid,size=1m", "/tmp": "rw,noexec,nosuid,size=16m"},
        "environment": {"PYTHONUNBUFFERED": "1"},
        "healthcheck": {
            "test": ["CMD", *module, "check", *spec_arguments(spec)],
            "interval": HEALTH_INTERVAL_NS,
            "timeout": HEALTH_INTERVAL_NS,
            "start_period": HEALTH_INTERVAL_NS,
            "retries": 2,
        },
        "mem_limit": "128m",
        "pids_limit": 64,
        "restart_policy": {"Name": "unless-stopped"},
        "labels": labels.managed(labels.ROLE_FIREWALL),
        "detach": True,
    }


def parse_spec(argv: Sequence[str]) -> tuple[str, FirewallSpec]:
    parser = argparse.ArgumentParser(prog="python -m berth.deploy.firewall")
    parser.add_argument("action", choices=["apply", "check", "remove"])
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--subnet", required=True)
    parser.add_argument("--trusted", default="", help="IP[,IP…]: the hub")
    parser.add_argument("--relays", default="", help="IP[,IP…]: the proxy")
    parser.add_argument("--server-port", type=int, default=8888, help="user servers' port")
    parser.add_argument("--hub-api", required=True, help="IP:PORT of the hub's API")
    parser.add_argument("--egress", choices=EGRESS_MODES, default="public")
    parser.add_argument("--allow", default="", help="CIDR[,CIDR…]: reachable in any mode")
    parser.add_argument("--resolvers", default="", help="IP[,IP…]: DNS servers (port 53)")
    parser.add_argument("--engine", choices=ENGINES, default=DOCKER, help="where the jumps go")
    args = parser.parse_args(argv)
    hub_ip, _, hub_port = args.hub_api.rpartition(":")
    try:
        spec = FirewallSpec(
            bridge=args.bridge,
            subnet=args.subnet,
            trusted=tuple(ip for ip in args.trusted.split(",") if ip),
            hub_api=(hub_ip, int(hub_port)),
            egress=args.egress,
            relays=tuple(ip for ip in args.relays.split(",") if ip),
            server_port=args.server_port,
            allow=tuple(net for net in args.allow.split(",") if net),
            resolvers=tuple(ip for ip in args.resolvers.split(",") if ip),
            engine=args.engine,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return args.action, spec
