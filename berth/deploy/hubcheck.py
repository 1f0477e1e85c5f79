"""Healthchecks of the service's containers (the image's HEALTHCHECK runs the hub's):

- ``hub`` (default): JupyterHub's API answers /hub/health. JupyterHub listens only after it has
  reached the proxy's API, so a healthy hub also means a reachable proxy.
- ``proxy``: the proxy answers HTTPS on its public port (any status: routes are the hub's job).
- ``engine``: the engine guard's socket answers /_ping.
- ``acme``: berth-acme's HTTP port answers (a redirect to HTTPS).
- ``backup``: berth-backup's engine socket answers.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
import urllib.request

from berth.deploy import layout


def hub() -> bool:
    url = f"http://127.0.0.1:{layout.HUB_API_PORT}/hub/health"
    with urllib.request.urlopen(url, timeout=3) as answer:
        status: int = answer.status
    return status == 200


def proxy() -> bool:
    # Only the container's own loopback is asked; the certificate may be for other names.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(
        "127.0.0.1", layout.PROXY_PORT, timeout=3, context=context
    )
    return _status(connection, "/hub/health") > 0


def acme() -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", layout.ACME_HTTP_PORT, timeout=3)
    return _status(connection, "/") == 301


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=3)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(3)
        self.sock.connect(self.path)


def engine() -> bool:
    return _status(_UnixConnection(layout.ENGINE_SOCKET), "/_ping") == 200


def backup() -> bool:
    """berth-backup reaches the engine through the host's socket."""
    return _status(_UnixConnection(layout.HOST_DOCKER_SOCKET), "/_ping") == 200


def _status(connection: http.client.HTTPConnection, path: str) -> int:
    """The status of GET `path` on `connection`, which is closed afterwards."""
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


CHECKS = {"hub": hub, "proxy": proxy, "engine": engine, "acme": acme, "backup": backup}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = CHECKS.get(args[0] if args else "hub")
    if check is None:
        print(f"usage: hubcheck [{'|'.join(CHECKS)}]", file=sys.stderr)
        return 2
    try:
        return 0 if check() else 1
    except (OSError, http.client.HTTPException):
        return 1


if __name__ == "__main__":
    sys.exit(main())
