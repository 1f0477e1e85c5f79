"""A stand-in for the hub's API, so that jupyterhub-singleuser can start without a JupyterHub.

jupyterhub-singleuser asks its hub for the version before it starts serving (five tries, then it
exits) and later posts activity reports. This answers both, and anything else, with 200 and an
empty JSON object: enough to time the user server's own start (bench/image_sizes.py
--singleuser). It listens on the gateway of a bridge network it creates (the host side of that
network: only containers on it reach it) and removes the network when done.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker

from berth.versions import JUPYTERHUB_HUB_VERSION


class _Answer(BaseHTTPRequestHandler):
    def _ok(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(min(length, 1 << 20))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-JupyterHub-Version", JUPYTERHUB_HUB_VERSION)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _ok

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class StandInHub:
    network: str
    api_url: str


@contextmanager
def standin_hub(client: docker.DockerClient) -> Iterator[StandInHub]:
    name = f"berth-bench-hub-{uuid.uuid4().hex[:8]}"
    network = client.networks.create(name, driver="bridge", labels={"berth-bench": "standin"})
    try:
        network.reload()
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        server = ThreadingHTTPServer((gateway, 0), _Answer)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield StandInHub(name, f"http://{gateway}:{server.server_address[1]}/hub/api")
        finally:
            server.shutdown()
            server.server_close()
    finally:
        network.remove()
