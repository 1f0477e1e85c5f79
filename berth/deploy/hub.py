"""The handle on the running hub: the service's containers by name, files read from them, and
the account tool run inside the hub (`berth users`, `berth status`, `berth up`)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any, cast

import docker
from docker.errors import NotFound
from docker.models.containers import Container

from berth.deploy import layout
from berth.errors import BerthError

# Every container `berth up` makes, including those of older Berths, for down, status and logs.
SERVICE_CONTAINERS = (
    layout.BACKUP_CONTAINER,
    layout.ACME_CONTAINER,
    layout.FIREWALL_CONTAINER,
    layout.PROXY_CONTAINER,
    layout.HUB_CONTAINER,
    layout.GUARD_CONTAINER,
)


def current(client: docker.DockerClient, name: str) -> Container | None:
    try:
        return client.containers.get(name)
    except NotFound:
        return None


def current_hub(client: docker.DockerClient) -> Container | None:
    found = current(client, layout.HUB_CONTAINER)
    if found is None:  # on a Swarm (backend: swarm): the running task of the berth-hub service
        tasks = client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={layout.HUB_CONTAINER}"}
        )
        found = tasks[0] if tasks else None
    return found


def read_file(container: Container, path: str) -> str:
    """A text file from a container (running or stopped); empty when it is not there."""
    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        return ""
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        extracted = tar.extractfile(member) if member else None
        return extracted.read().decode() if extracted else ""


def sync_routes(client: docker.DockerClient) -> None:
    """Ask the hub to add its routes to a new proxy now, not at its next periodic check."""
    hub = current_hub(client)
    if hub is not None and hub.status == "running":
        hub.exec_run(["python3", "-m", "berth.deploy.routes"])


def exec_accounts(
    client: docker.DockerClient,
    request: Mapping[str, Any],
    environment: dict[str, str] | None = None,
) -> Any:
    """Run berth.deploy.accounts in the hub container and return its JSON answer.

    ``request`` is what :func:`berth.deploy.accounts.request` makes: one JSON argument, so no
    user name can be taken for an option."""
    hub = current_hub(client)
    if hub is None or hub.status != "running":
        raise BerthError("the hub is not running", hint="start it with `berth up`")
    result = hub.exec_run(
        ["python3", "-m", "berth.deploy.accounts", json.dumps(request)],
        environment=environment or {},
    )
    output = cast(bytes, result.output)  # not streamed: the whole output
    try:
        answer = json.loads(output.decode().strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BerthError(f"account operation failed:\n{output.decode()[-800:]}") from exc
    if isinstance(answer, dict) and "error" in answer:
        raise BerthError(answer["error"])
    if result.exit_code != 0:
        raise BerthError("account operation failed")
    return answer
