"""Connecting to the Docker engine, with an error that says what to do when there is none."""

from __future__ import annotations

import docker
from docker.errors import DockerException

from berth.errors import BerthError

# Concurrent spawns and builds share one client; requests' default pool of 10 would queue them.
_POOL_SIZE = 64


def connect(timeout: int = 120) -> docker.DockerClient:
    """Return a client for the engine named by DOCKER_HOST (default: the local socket)."""
    try:
        client = docker.from_env(timeout=timeout, max_pool_size=_POOL_SIZE)
        client.ping()
    except DockerException as exc:
        raise BerthError(
            f"cannot reach the Docker engine: {exc}",
            hint="start it (e.g. `systemctl start docker` or `dockerd &`), "
            "or point DOCKER_HOST at a running engine",
        ) from exc
    return client
