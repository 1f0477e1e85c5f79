"""What tries connections and what answers them, for the isolation tests: the listener and
prober scripts that run in containers, a host of the LAN stand-in (isolation_lab.Lan), a
listener on the host itself, and the readings of their outcomes.

Every probe is bounded by a short timeout; traffic goes only to containers on networks the
tests created and to the host's own addresses.
"""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import threading
from collections.abc import Iterable
from typing import Any

PROBE_TIMEOUT = 2.0

# The two servers below: serve() accepts and closes TCP connections and answers each UDP
# datagram with reply(port, datagram), on sockets that serve_on opens on 0.0.0.0 (a listening
# TCP socket or a bound UDP one for each (kind, port)).
SERVER = r"""
import json, selectors, socket, sys
def serve_on(ports):
    sel = selectors.DefaultSelector()
    for kind, port in ports:
        stream = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET, stream)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        if kind == "tcp":
            s.listen(128)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, (kind, port))
    return sel
def serve(sel, reply):
    print("listening", flush=True)
    while True:
        for key, _ in sel.select():
            try:
                if key.data[0] == "tcp":
                    key.fileobj.accept()[0].close()
                    continue
                data, peer = key.fileobj.recvfrom(2048)
                key.fileobj.sendto(reply(key.data[1], data), peer)
            except OSError:
                pass
"""

# Listens on the given TCP ports (accepts and closes) and UDP ports (echoes) on 0.0.0.0.
LISTENER = (
    SERVER
    + r"""
ports = json.loads(sys.argv[1])
sel = serve_on([("tcp", p) for p in ports["tcp"]] + [("udp", p) for p in ports["udp"]])
serve(sel, lambda port, data: data)
"""
)

# Tries every target at once; prints one outcome per target: open (TCP connected, or a UDP
# reply came back), refused, timeout, or error:<errno>.
PROBE = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
targets, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
def attempt(target):
    kind, host, port = target
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        if kind == "tcp":
            s.connect((host, port))
        else:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.sendto(b"berth-fw-probe", (host, port))
            s.recvfrom(2048)
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except (TimeoutError, socket.timeout):
        return "timeout"
    except OSError as exc:
        return f"error:{exc.errno}"
    finally:
        s.close()
with ThreadPoolExecutor(min(256, max(1, len(targets)))) as pool:
    print(json.dumps(list(pool.map(attempt, targets))))
"""

# Answers DNS queries for any name with one A record (10.9.9.9), echoes other UDP datagrams,
# accepts TCP connections: a LAN host with a resolver and services.
LAN_TARGETS = [("tcp", 80), ("tcp", 8080), ("udp", 8080), ("udp", 53)]  # what LAN_HOST answers
LAN_HOST = (
    SERVER
    + f"LAN_TARGETS = {LAN_TARGETS!r}\n"
    + r"""
def answer(query):
    end = query.index(b"\0", 12) + 5  # the question: its name, type and class
    record = b"\xc0\x0c\0\x01\0\x01\0\0\0\x3c\0\x04" + bytes([10, 9, 9, 9])
    return query[:2] + b"\x81\x80" + query[4:6] + b"\0\x01\0\0\0\0" + query[12:end] + record
def reply(port, data):
    try:
        return answer(data) if port == 53 else data
    except ValueError:
        return data
serve(serve_on(LAN_TARGETS), reply)
"""
)

Target = tuple[str, str, int]  # (tcp|udp, address, port)


def listen_ports(tcp: Iterable[int], udp: Iterable[int]) -> str:
    return json.dumps({"tcp": list(tcp), "udp": list(udp)})


def probe(container: Any, targets: list[Target]) -> dict[Target, str]:
    """Runs the prober inside `container` as its own user; target -> outcome."""
    result = container.exec_run(["python3", "-c", PROBE, json.dumps(targets), str(PROBE_TIMEOUT)])
    output = result.output.decode()
    assert result.exit_code == 0, output
    outcomes = json.loads(output.strip().splitlines()[-1])
    return dict(zip(targets, outcomes, strict=True))


def opened(outcomes: dict[Target, str]) -> list[Target]:
    return [target for target, outcome in outcomes.items() if outcome == "open"]


def answered(outcomes: dict[Target, str]) -> list[tuple[Target, str]]:
    """Targets that gave any sign of life (not a silent drop)."""
    return [(t, o) for t, o in outcomes.items() if o != "timeout"]


def host_addresses() -> list[str]:
    output = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    addresses = [line.split()[3].split("/")[0] for line in output.splitlines()]
    return [a for a in addresses if not a.startswith("127.")]


class HostListener:
    """A TCP listener and a UDP echo on one of the host's bridge addresses, in this process."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.tcp = socket.create_server((address, 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((address, 0))
        self.tcp_port = self.tcp.getsockname()[1]
        self.udp_port = self.udp.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.tcp, selectors.EVENT_READ, "tcp")
            sel.register(self.udp, selectors.EVENT_READ, "udp")
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.2):
                    if key.data == "tcp":
                        self.tcp.accept()[0].close()
                    else:
                        data, peer = self.udp.recvfrom(2048)
                        self.udp.sendto(data, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.tcp.close()
        self.udp.close()
