"""What a failed deployment test prints about the deployment before it is torn down: the state
and last log lines of each service container, the host's firewall and NAT rules that name the
deployment's bridge or port, and (on Podman) aardvark-dns's records of the networks.

A failure on a long run is often seen once; the teardown removes the containers, so the logs
must be read before it (the test's captured output shows this report).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import docker

from berth.deploy.hub import SERVICE_CONTAINERS
from berth.deploy.network import bridge_name

AARDVARK = Path("/run/containers/networks/aardvark-dns")
LOG_LINES = 60


def container_part(client: docker.DockerClient, name: str) -> str:
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        return f"-- {name}: none"
    except docker.errors.APIError as exc:
        return f"-- {name}: {exc}"
    state = container.attrs.get("State", {})
    networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    addresses = {net: info.get("IPAddress") for net, info in networks.items()}
    head = f"-- {name}: {state.get('Status')} since {state.get('StartedAt')} {addresses}"
    try:
        log = container.logs(tail=LOG_LINES).decode(errors="replace")
    except docker.errors.APIError as exc:
        log = str(exc)
    return f"{head}\n{log}"


def rules_part(words: list[str]) -> str:
    lines = []
    for table in ("filter", "nat"):
        try:
            listed = subprocess.run(
                ["iptables-nft", "-t", table, "-S"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            return f"-- iptables: {exc}"
        named = [line for line in listed.stdout.splitlines() if any(w in line for w in words)]
        lines += [f"{table}: {line}" for line in named]
    return "-- iptables (lines naming the bridge or port):\n" + "\n".join(lines)


def aardvark_part() -> str:
    if not AARDVARK.is_dir():
        return ""
    parts = []
    for path in sorted(AARDVARK.iterdir()):
        try:
            parts.append(f"{path.name}:\n{path.read_text()}")
        except OSError as exc:
            parts.append(f"{path.name}: {exc}")
    return "-- aardvark-dns:\n" + "\n".join(parts)


def report(config: dict) -> str:
    """Everything above for the deployment of `config` (a berth.yaml as a dict)."""
    client = docker.from_env()
    try:
        parts = [container_part(client, name) for name in SERVICE_CONTAINERS]
    finally:
        client.close()
    port = str(config.get("listen", {}).get("port", ""))
    # netavark's port forwarding is in its HOSTPORT chains, keyed by the port.
    words = [bridge_name(config["network"]), "HOSTPORT", *([f"--dport {port} "] if port else [])]
    parts += [rules_part(words), aardvark_part()]
    return "\n".join(part for part in parts if part)
