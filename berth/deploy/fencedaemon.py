"""The berth-fence loop on one node (`python -m berth.deploy.fence …`; rules in fence.py).

Watches the node's engine for user servers starting and fences each at once (the server waits
for it, berth/fence_signal.py); every 30 seconds, and whenever the hub's or the proxy's address
changes, it checks every server on the node and rewrites rules that are missing or changed.
A fence that starts (first start, restart, replacement) thus fences every server already
there. Stopping it leaves the rules in place: they are in the servers' own namespaces.

It holds its node's socket as a bind mount: after a dockerd restart that file is dead, so the
fence exits once it has refused connections for a few seconds and the Swarm starts a new task
with the new socket (berth/engine_socket.py, as the engine guard and berth-backup do).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors

from berth import engine_socket
from berth.deploy import hostfacts
from berth.deploy.fence import (
    CHECK_INTERVAL_SECONDS,
    DOCKER_SOCKET,
    HOST_ETC,
    HOST_PROC,
    FenceSpec,
    NodeView,
    closed_networks,
    is_user_server,
    own_ruleset,
    server_filters,
    server_rulesets,
)
from berth.deploy.firewall import Ruleset, drift, hook_counts, render

FAMILIES = (("iptables-nft", "iptables-nft-restore"), ("ip6tables-nft", "ip6tables-nft-restore"))
GWBRIDGE = "docker_gwbridge"
RESTORE_ATTEMPTS = 3


class FenceError(Exception):
    pass


def say(message: str) -> None:
    print(f"berth-fence: {message}", file=sys.stderr, flush=True)


def _run(command: Sequence[str], text: str | None = None, fds: Sequence[int] = ()) -> str:
    result = subprocess.run(
        list(command), input=text, capture_output=True, text=True, timeout=30, pass_fds=fds
    )
    if result.returncode != 0:
        raise FenceError(f"{command[-2:]} failed: {result.stderr.strip()}")
    return result.stdout


def sync(ruleset: Ruleset, tools: tuple[str, str], prefix: Sequence[str], fds: Sequence[int] = ()
         ) -> list[str]:  # fmt: skip
    """Make one namespace's rules of one family equal to ``ruleset``; what had to be fixed."""
    listing = _run([*prefix, tools[0], "-t", "filter", "-S"], fds=fds)
    lines = [line for line in listing.splitlines() if line and not line.startswith("#")]
    problems = drift(ruleset, lines)
    if problems:
        text = render(ruleset, hook_counts(ruleset, lines))
        for attempt in range(RESTORE_ATTEMPTS):
            try:
                _run([*prefix, tools[1], "--noflush"], text=text, fds=fds)
                break
            except FenceError:
                if attempt == RESTORE_ATTEMPTS - 1:
                    raise
                time.sleep(0.3 * (attempt + 1))
    return problems


def fence_container(attrs: dict[str, Any], rulesets: Sequence[Ruleset]) -> list[str]:
    """Enter the container's network namespace (through the node's /proc) and sync its rules."""
    pid, container_id = int(attrs["State"]["Pid"]), str(attrs["Id"])
    if pid <= 1:
        raise FenceError("no process")
    fd = os.open(f"{HOST_PROC}/{pid}/ns/net", os.O_RDONLY)
    try:
        # The namespace opened is the container's only if the PID still is (not reused).
        if container_id not in Path(f"{HOST_PROC}/{pid}/cgroup").read_text():
            raise FenceError(f"process {pid} is no longer in the container")
        prefix = ["nsenter", f"--net=/proc/self/fd/{fd}"]
        problems = []
        for ruleset, tools in zip(rulesets, FAMILIES, strict=True):
            problems += sync(ruleset, tools, prefix, fds=(fd,))
        return problems
    finally:
        os.close(fd)


def resolve(name: str) -> tuple[str, ...]:
    with contextlib.suppress(OSError):
        found = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        return tuple(sorted({str(info[4][0]) for info in found}))
    return ()


def _subnets(client: docker.DockerClient, name: str) -> list[str]:
    with contextlib.suppress(docker.errors.NotFound):
        config = (client.networks.get(name).attrs.get("IPAM") or {}).get("Config") or []
        return [str(c["Subnet"]) for c in config if "." in str(c.get("Subnet", ""))]
    return []


def node_view(client: docker.DockerClient, spec: FenceSpec, last: NodeView | None) -> NodeView:
    """The hub's and the proxy's addresses now (the last known ones while a name does not
    resolve, e.g. the hub being replaced), and what no server may open on this node."""
    swarm = client.info().get("Swarm") or {}
    addresses = [swarm.get("NodeAddr") or ""]
    managers = swarm.get("RemoteManagers") or []
    addresses += [str(m.get("Addr", "")).rpartition(":")[0] for m in managers]
    closed = closed_networks(
        [*_subnets(client, spec.network), *_subnets(client, GWBRIDGE)],
        [a for a in addresses if a and "." in a],
    )
    hub = resolve(spec.hub) or (last.hub if last else ())
    relays = tuple(sorted({ip for name in spec.relays for ip in resolve(name)}))
    etc = Path(HOST_ETC)
    resolvers = hostfacts.dns_resolvers(etc / "docker/daemon.json", etc / "resolv.conf", etc / "-")
    return NodeView(
        hub=hub,
        relays=relays or (last.relays if last else ()),
        closed=closed,
        resolvers=resolvers,
    )


def watch_starts(client: docker.DockerClient, found: queue.Queue[str], stop: threading.Event
                 ) -> None:  # fmt: skip
    """Put the ID of every user server that starts on this node into ``found``."""
    filters = {"type": "container", "event": "start", **server_filters()}
    while not stop.is_set():
        try:
            for event in client.events(decode=True, filters=filters):
                found.put(str(event.get("id", "")))
        except Exception as exc:  # the engine restarting: the periodic check covers the gap
            say(f"event stream: {exc}")
        stop.wait(1.0)


class Fence:
    def __init__(self, spec: FenceSpec, client: docker.DockerClient) -> None:
        self.spec, self.client = spec, client
        self.view: NodeView | None = None
        self.fenced: set[str] = set()

    def servers(self, ids: Sequence[str] | None) -> list[dict[str, Any]]:
        found = []
        if ids is None:
            ids = [str(c.id) for c in self.client.containers.list(filters=server_filters())]
        for container_id in ids:
            with contextlib.suppress(docker.errors.NotFound):
                attrs = self.client.api.inspect_container(container_id)
                if is_user_server(attrs, self.spec.network):
                    found.append(attrs)
        return found

    def fence(self, ids: Sequence[str] = (), everything: bool = False) -> None:
        """Fence the servers ``ids``; every server on the node with ``everything`` or when the
        hub's or the proxy's address changed."""
        view = node_view(self.client, self.spec, self.view)
        full = everything or view != self.view
        if view != self.view:
            say(f"hub {list(view.hub)}, proxy {list(view.relays)}, closed {list(view.closed)}")
        self.view = view
        rulesets = server_rulesets(self.spec, view)
        servers = self.servers(None if full else ids)
        for attrs in servers:
            name = str(attrs.get("Name", "")).lstrip("/")
            try:
                problems = fence_container(attrs, rulesets)
            except (FenceError, OSError, subprocess.SubprocessError) as exc:
                say(f"error: {name}: {exc}")
                continue
            if attrs["Id"] not in self.fenced:
                say(f"fenced {name}")
            elif problems:
                say(f"{name}: rules re-applied: " + "; ".join(problems))
            self.fenced.add(str(attrs["Id"]))
        if full:
            self.fenced &= {str(a["Id"]) for a in servers}

    def close_self(self) -> None:
        for tools, ruleset in zip(FAMILIES, (own_ruleset(), own_ruleset()), strict=True):
            sync(ruleset, tools, ())


def run(spec: FenceSpec, stop: threading.Event, interval: float = CHECK_INTERVAL_SECONDS) -> None:
    client = docker.DockerClient(base_url=f"unix://{DOCKER_SOCKET}", timeout=60)
    fence = Fence(spec, client)
    fence.close_self()
    started: queue.Queue[str] = queue.Queue()
    threading.Thread(target=watch_starts, args=(client, started, stop), daemon=True).start()
    say(f"watching user servers on {spec.network} (hub {spec.hub}:{spec.hub_port})")
    last_full = 0.0
    silence = engine_socket.Silence(engine_socket.LOST_AFTER_SECONDS)
    while not stop.is_set():
        now = time.monotonic()
        if silence.observe(engine_socket.refused(DOCKER_SOCKET), now):
            raise engine_socket.EngineLost(
                engine_socket.lost_message("berth-fence", silence.refused_for(now))
            )
        ids: list[str] = []
        with contextlib.suppress(queue.Empty):
            ids.append(started.get(timeout=1.0))
            while True:
                ids.append(started.get_nowait())
        try:
            everything = time.monotonic() - last_full >= interval
            fence.fence(ids, everything)
            if everything:
                fence.close_self()
                last_full = time.monotonic()
        except (FenceError, docker.errors.APIError, OSError, subprocess.SubprocessError) as exc:
            say(f"error: {exc}")  # kept running: the rules already written stay
    say("stopped; the rules stay in the servers' namespaces")


def main(spec: FenceSpec) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        run(spec, stop)
    except engine_socket.EngineLost as exc:  # the Swarm starts a new task with the new socket
        say(str(exc))
        return engine_socket.EXIT_ENGINE_LOST
    except (FenceError, docker.errors.DockerException, OSError) as exc:
        say(f"error: {exc}")
        return 1
    return 0
