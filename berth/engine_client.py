"""Connecting to the Docker engine, with an error that says what to do when there is none."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

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


# A container's Status once its process ended: Docker says exited (or dead), Podman stopped.
STOPPED_STATUSES = ("exited", "dead", "stopped")


def has_stopped(attrs: dict[str, Any], restarts_before: int) -> bool:
    """Whether a container (its inspect record) has stopped or restarted since its restart
    count was `restarts_before`. Docker shows a container its restart policy brings back as
    Restarting for a while; Podman restarts it at once (its Status is "stopped" only for a
    moment, easily missed between two polls), but counts every restart in RestartCount."""
    state = attrs["State"]
    return (
        state["Status"] in STOPPED_STATUSES
        or bool(state.get("Restarting"))
        or attrs.get("RestartCount", 0) > restarts_before
    )


def wait_healthy(
    container: Container,
    what: str,
    timeout: float,
    ready: Callable[[Container], bool] | None = None,
    interval: float = 0.25,
    *,
    ready_before_healthcheck: bool = False,
    explain_stop: Callable[[bytes], str | None] | None = None,
) -> None:
    """Wait for a container's HEALTHCHECK to pass, or for `ready` to say yes: for images
    without a healthcheck, and, with `ready_before_healthcheck`, also while the healthcheck has
    not passed yet (a probe answers sooner than the engine's first check, which runs only after
    its interval).

    Fails as soon as the container stops or restarts (with `explain_stop`'s message for its
    log when that gives one, else the log's tail), and at the timeout.
    """
    deadline = time.monotonic() + timeout
    restarts: int | None = None
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if restarts is None:
            restarts = container.attrs.get("RestartCount", 0)
        if has_stopped(container.attrs, restarts):
            log = container.logs(tail=25)
            explained = explain_stop(log) if explain_stop is not None else None
            if explained:
                raise BerthError(explained)
            tail = log.decode(errors="replace").strip()
            raise BerthError(f"{what} stopped (exit status {state.get('ExitCode')}):\n{tail}")
        health = state.get("Health", {}).get("Status")
        if health == "healthy":
            return
        if ready is not None and (health is None or ready_before_healthcheck) and ready(container):
            return
        time.sleep(interval)
    tail = container.logs(tail=25).decode(errors="replace").strip()
    raise BerthError(f"{what} did not become ready within {timeout:.0f}s:\n{tail}")
