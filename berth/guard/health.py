"""``python -m berth.guard.health [SOCKET]``: exit 0 when the guard answers a ping through to
the engine (for the guard container's HEALTHCHECK; the hub image's own check is the hub's)."""

from __future__ import annotations

import socket
import sys

DEFAULT_SOCKET = "/run/berth-engine/docker.sock"


def ping(socket_path: str, timeout: float = 5.0) -> bool:
    """Whether ``GET /_ping`` through the guard comes back ``200``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.startswith(b"HTTP/1.1 200 ")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return 0 if ping(args[0] if args else DEFAULT_SOCKET) else 1


if __name__ == "__main__":
    sys.exit(main())
