"""Connecting to the Docker engine, with an error that says what to do when there is none."""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
from docker.errors import DockerException
from docker.models.containers import Container

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


def wait_healthy(
    container: Container,
    what: str,
    timeout: float,
    ready: Callable[[Container], bool] | None = None,
    interval: float = 0.25,
) -> None:
    """Wait for a container's HEALTHCHECK to pass (or `ready`, for images without one).

    Fails with the log's tail as soon as the container stops or restarts, and at the timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] in ("exited", "dead") or state.get("Restarting"):
            tail = container.logs(tail=25).decode(errors="replace").strip()
            raise BerthError(f"{what} stopped (exit status {state.get('ExitCode')}):\n{tail}")
        health = state.get("Health", {}).get("Status")
        if health == "healthy" or (health is None and ready is not None and ready(container)):
            return
        time.sleep(interval)
    tail = container.logs(tail=25).decode(errors="replace").strip()
    raise BerthError(f"{what} did not become healthy within {timeout:.0f}s:\n{tail}")
