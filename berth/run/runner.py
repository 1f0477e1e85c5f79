"""`berth run` against the engine: ensure the image, start, wait, tell the URL, clean up."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from berth import engine_client, ports
from berth.errors import BerthError
from berth.labels import LABEL_RUN, LABEL_RUN_MOUNT
from berth.run.spec import (
    CONTAINER_PORT,
    RunSpec,
    ServerInfo,
    browser_url,
    create_kwargs,
)

HEALTH_TIMEOUT = 180.0


def start(client: docker.DockerClient, spec: RunSpec) -> Container:
    address = "0.0.0.0" if spec.public else "127.0.0.1"
    if not ports.port_free(address, spec.port):
        raise BerthError(
            f"port {spec.port} is already in use on {address}",
            hint="pick another one with --port, or stop what is listening there",
        )
    try:
        client.containers.get(spec.name)
    except NotFound:
        pass
    else:
        raise BerthError(
            f"a container named {spec.name!r} already exists",
            hint=f"choose another --name, or remove it: berth run --stop {spec.name}",
        )
    container = client.containers.create(**create_kwargs(spec))
    try:
        container.start()
    except APIError as exc:
        container.remove(force=True)
        raise BerthError(f"the engine refused to start the notebook: {exc.explanation}") from exc
    return container


def wait_healthy(container: Container, timeout: float = HEALTH_TIMEOUT) -> None:
    """Wait for the image's healthcheck (or a known server, for images without one)."""
    engine_client.wait_healthy(container, "the notebook server", timeout, ready=_answers)


def _answers(container: Container) -> bool:
    """For images without a healthcheck: does `jupyter server list` know a server yet?"""
    return bool(server_info(container))


def server_info(container: Container) -> ServerInfo | None:
    """The running server's entry from `jupyter server list --jsonlist`, run in the container."""
    try:
        result = container.exec_run(["jupyter", "server", "list", "--jsonlist"])
    except APIError:
        return None
    if result.exit_code != 0:
        return None
    try:
        # not streamed: the whole output
        servers: list[ServerInfo] = json.loads(cast(bytes, result.output).decode())
    except ValueError:
        return None
    return servers[0] if servers else None


def host_port(container: Container) -> tuple[str, int]:
    binding = container.attrs["NetworkSettings"]["Ports"][f"{CONTAINER_PORT}/tcp"][0]
    host = binding["HostIp"]
    return ("127.0.0.1" if host in ("", "0.0.0.0") else host), int(binding["HostPort"])


def url_of(container: Container) -> str:
    container.reload()
    info = server_info(container)
    if info is None:
        raise BerthError(f"no Jupyter server is running in {container.name}")
    host, port = host_port(container)
    return browser_url(info, host, port)


def follow_logs(container: Container, write: Callable[[bytes], object]) -> None:
    """Copy the container's log to `write` until it exits (Ctrl-C interrupts the caller)."""
    for chunk in container.logs(stream=True, follow=True, since=int(time.time())):
        write(chunk)


def remove(container: Container) -> None:
    """Stop (SIGTERM to tini, which forwards it) and remove; gone already is fine."""
    try:
        container.stop(timeout=10)
        container.remove(force=True)
    except NotFound:
        pass


@dataclass(frozen=True)
class Listed:
    name: str
    image: str
    status: str
    url: str
    mount: str


def list_running(client: docker.DockerClient) -> list[Listed]:
    rows = []
    for container in client.containers.list(filters={"label": LABEL_RUN}):
        try:
            url = url_of(container)
        except BerthError:
            url = "(starting)"
        image = container.attrs["Config"]["Image"]
        mount = container.labels.get(LABEL_RUN_MOUNT, "")
        rows.append(Listed(str(container.name), image, container.status, url, mount))
    return rows
