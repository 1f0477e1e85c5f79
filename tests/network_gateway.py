"""A bridge network's gateway address as a place for a process on the host to listen.

The tests' hub (tests/integration/hub_harness.py) and the ACME tests' Pebble
(tests/acme_deployment.py) listen on the gateway of a network of their own, so that containers
on it reach them. Docker gives the host that address when it creates the network; Podman
(netavark) only when the first container joins it: there a sleeping container holds the bridge
up. Importable from tests/ and below (tests/conftest.py puts tests/ on sys.path; bench/ scripts
add it themselves).
"""

from __future__ import annotations

import contextlib
import socket
import time

import docker


def network_gateway(client: docker.DockerClient, network: str) -> str:
    return str(client.networks.get(network).attrs["IPAM"]["Config"][0]["Gateway"])


def host_has_address(address: str) -> bool:
    """Whether the host has this address (so a process on the host can listen on it)."""
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def hold_gateway_up(
    client: docker.DockerClient,
    network: str,
    *,
    image: str,
    anchor: str,
    labels: dict[str, str] | None = None,
    timeout: float = 30,
) -> str | None:
    """Make sure the host has the network's gateway address, within ``timeout`` seconds.

    Where it has not, starts the container ``anchor`` (``sleep infinity`` in ``image``) on the
    network and returns its name: the caller removes it when done. None: no anchor was needed.
    Should the address not come, the anchor is removed before the error is raised.
    """
    gateway = network_gateway(client, network)
    if host_has_address(gateway):
        return None
    client.containers.run(
        image,
        entrypoint=["sleep", "infinity"],
        name=anchor,
        network=network,
        labels=labels or {},
        detach=True,
    )
    deadline = time.monotonic() + timeout
    while not host_has_address(gateway):
        if time.monotonic() > deadline:
            with contextlib.suppress(docker.errors.APIError):
                client.containers.get(anchor).remove(force=True)
            raise RuntimeError(f"the host never got the gateway address {gateway}")
        time.sleep(0.2)
    return anchor
