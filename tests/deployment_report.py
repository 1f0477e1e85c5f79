"""What a failed deployment test prints about the deployment before it is torn down: the state
and last log lines of each service container, the host's firewall and NAT rules that name the
deployment's bridge or port, and (on Podman) aardvark-dns's records of the networks; the user
servers' state and logs; the host's routes, neighbours and conntrack entries on the bridge; the
hub's resolver and a lookup of the deployment's names from inside it; and whether the published
port and the proxy's own address take a TCP connection from the host (so a failure says where
the traffic stopped: NAT, the bridge, the container).

A failure on a long run is often seen once; the teardown removes the containers, so the logs
must be read before it (the test's captured output shows this report).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import docker

from berth.deploy.hub import SERVICE_CONTAINERS
from berth.deploy.network import bridge_name
from berth.labels import LABEL_USER

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


def run_part(title: str, command: list[str], keep: str = "") -> str:
    """The output of `command` (only lines containing `keep`, if given); the error if it fails."""
    try:
        ran = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"-- {title}: {exc}"
    lines = [line for line in (ran.stdout + ran.stderr).splitlines() if keep in line]
    return f"-- {title}:\n" + "\n".join(lines)


def user_parts(client: docker.DockerClient) -> list[str]:
    try:
        servers = client.containers.list(all=True, filters={"label": [LABEL_USER]})
    except docker.errors.APIError as exc:
        return [f"-- user servers: {exc}"]
    return [container_part(client, server.name) for server in servers]


def connect_part(title: str, address: str, port: int) -> str:
    """Whether a TCP connection to address:port opens within 5 s, from the host."""
    try:
        with socket.create_connection((address, port), timeout=5):
            return f"-- {title} {address}:{port}: connected"
    except OSError as exc:
        return f"-- {title} {address}:{port}: {exc!r}"


def hub_dns_part(client: docker.DockerClient) -> str:
    """The hub's resolv.conf and its lookup of the other service and user containers' names."""
    try:
        hub = client.containers.get("berth-hub")
        names = [c.name for c in client.containers.list() if c.name != "berth-hub"]
        script = (
            "import socket,sys\nprint(open('/etc/resolv.conf').read())\n"
            "for n in sys.argv[1:]:\n"
            " try: print(n, socket.gethostbyname(n))\n"
            " except Exception as e: print(n, repr(e))"
        )
        found = hub.exec_run(["python3", "-c", script, *names])
    except docker.errors.APIError as exc:
        return f"-- the hub's lookups: {exc}"
    return "-- the hub's resolver and lookups:\n" + found.output.decode(errors="replace")


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
    bridge = bridge_name(config["network"])
    listen = config.get("listen", {})
    port = str(listen.get("port", ""))
    client = docker.from_env()
    try:
        parts = [container_part(client, name) for name in SERVICE_CONTAINERS]
        parts += user_parts(client)
        parts.append(hub_dns_part(client))
        proxy = client.containers.get("berth-proxy") if port else None
        proxy_ip = ""
        if proxy is not None:
            networks = proxy.attrs.get("NetworkSettings", {}).get("Networks") or {}
            proxy_ip = (networks.get(config["network"]) or {}).get("IPAddress") or ""
    except docker.errors.APIError as exc:
        parts.append(f"-- the proxy: {exc}")
        proxy_ip = ""
    finally:
        client.close()
    if port:
        parts.append(
            connect_part("the published port", listen.get("address", "127.0.0.1"), int(port))
        )
    if proxy_ip:
        parts.append(connect_part("the proxy's own address", proxy_ip, 8443))
    # netavark's port forwarding is in its HOSTPORT chains, keyed by the port.
    words = [bridge, "HOSTPORT", *([f"--dport {port} "] if port else [])]
    parts += [
        rules_part(words),
        aardvark_part(),
        run_part("aardvark-dns's sockets", ["ss", "-lunpH"], ":53"),
        run_part("routes", ["ip", "route"]),
        run_part("neighbours on the bridge", ["ip", "neigh", "show", "dev", bridge]),
        run_part("the bridge's ports", ["bridge", "link", "show"], bridge),
        run_part(
            "conntrack (the published port)",
            ["conntrack", "-L", "-p", "tcp", "--dport", port or "0"],
        ),
        run_part("conntrack (UDP, DNS)", ["conntrack", "-L", "-p", "udp", "--dport", "53"]),
    ]
    return "\n".join(part for part in parts if part)
