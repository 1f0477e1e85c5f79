"""A `berth up` deployment with tls.acme against Pebble on this machine (tests/acme_pebble.py),
for test_acme_deploy.py and the browser test (tests/e2e/test_acme_browser.py).

berth-acme reaches Pebble's directory on the gateway of its own network (a host address made
before `berth up`, so Pebble can listen there); Pebble's resolver answers 127.0.0.1 for every
name, so it validates on the ports the deployment publishes on loopback: HTTP-01 on
`tls.acme.http_port` (berth-acme) and TLS-ALPN-01 on the HTTPS port (the proxy).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from acme_pebble import LoopbackPebble, loopback_pebble
from deployment import PREFIX, Deployment, base_config, exclusive_hub, free_port, teardown
from network_gateway import hold_gateway_up, network_gateway

ACME_NETWORK = f"{PREFIX}-net-acme"  # berth up's `<network>-acme`, made first for its gateway
NAME = "hub.berth.test"


def pebble_address(client: docker.DockerClient) -> str:
    """The gateway of ACME_NETWORK, once the host has it (tests/network_gateway.py); on Podman
    the anchor is PREFIX-named, so the teardown removes it."""
    hold_gateway_up(client, ACME_NETWORK, image="berth/hub:latest", anchor=f"{PREFIX}-acme-anchor")
    return network_gateway(client, ACME_NETWORK)


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
                listen_ip=pebble_address(client),
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
