"""A `berth up` deployment with tls.acme against Pebble on this machine (tests/acme_pebble.py),
for test_acme_deploy.py and the browser test (tests/e2e/test_acme_browser.py).

berth-acme reaches Pebble's directory on the gateway of its own network (a host address made
before `berth up`, so Pebble can listen there); Pebble's resolver answers 127.0.0.1 for every
name, so it validates on the ports the deployment publishes on loopback: HTTP-01 on
`tls.acme.http_port` (berth-acme) and TLS-ALPN-01 on the HTTPS port (the proxy).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from acme_pebble import LoopbackPebble, loopback_pebble
from deployment import PREFIX, Deployment, base_config, exclusive_hub, free_port, teardown

ACME_NETWORK = f"{PREFIX}-net-acme"  # berth up's `<network>-acme`, made first for its gateway
NAME = "hub.berth.test"


def network_gateway(client: docker.DockerClient, network: str) -> str:
    return str(client.networks.get(network).attrs["IPAM"]["Config"][0]["Gateway"])


def host_has(address: str) -> bool:
    """Whether the host has this address (so Pebble can listen on it)."""
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def hold_gateway_up(client: docker.DockerClient, network: str) -> str:
    """The network's gateway, once the host has it. Docker gives the host that address when it
    creates the network; Podman (netavark) only when the first container joins it: there a
    sleeping container (PREFIX-named: the teardown removes it) holds the bridge up."""
    gateway = network_gateway(client, network)
    if host_has(gateway):
        return gateway
    client.containers.run(
        "berth/hub:latest",
        entrypoint=["sleep", "infinity"],
        name=f"{PREFIX}-acme-anchor",
        network=network,
        detach=True,
    )
    deadline = time.monotonic() + 30
    while not host_has(gateway):
        assert time.monotonic() < deadline, f"the host never got the gateway {gateway}"
        time.sleep(0.2)
    return gateway


@contextmanager
def acme_deployment(
    workdir: Path, client: docker.DockerClient, validity: int
) -> Iterator[tuple[Deployment, LoopbackPebble]]:
    """Holds the deployment lock; Pebble issues certificates valid for `validity` seconds."""
    with exclusive_hub():
        teardown(workdir)
        client.networks.create(ACME_NETWORK, driver="bridge", labels={"berth.deploy.role": "acme"})
        try:
            port, http_port = free_port(), free_port()
            (workdir / "pebble").mkdir(exist_ok=True)
            with loopback_pebble(
                workdir / "pebble",
                validity,
                listen_ip=hold_gateway_up(client, ACME_NETWORK),
                http_port=http_port,
                tls_port=port,
            ) as pebble:
                (workdir / "ca.pem").write_bytes(pebble.ca.read_bytes())
                config = base_config(port)
                config["tls"] = {
                    "acme": {
                        "email": "ops@example.org",
                        "hostnames": [NAME],
                        "directory": pebble.directory,
                        "directory_ca": "ca.pem",  # Pebble's directory's own HTTPS
                        "http_port": http_port,
                    }
                }
                dep = Deployment(workdir, port, config)
                dep.write_config()
                dep.up()
                yield dep, pebble
        finally:
            teardown(workdir)
