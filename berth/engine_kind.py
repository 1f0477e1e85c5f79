"""Which engine answers the Docker Engine API (dockerd or Podman), and what Podman made of a
network when its Docker-compatible answers leave it out.

Podman's compatible network inspect reports neither the bridge name nor the user-server
address range it was asked for (it keeps both, docs/podman.md); its own API reports them.
The docker SDK has no call for that API, so its one request goes through the SDK's session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DOCKER = "docker"
PODMAN = "podman"
ENGINES = (DOCKER, PODMAN)
# What Podman puts before an image name given without a registry: docker.io/ (docker.io/library/
# for a one-part name) on an image committed or tagged through its compatible API, localhost/ on
# one built or loaded. Docker reports the name as given.
IMPLICIT_REGISTRIES = ("docker.io/library/", "docker.io/", "localhost/")


def image_names(tags: Iterable[str]) -> set[str]:
    """An image's tags as they were asked for, on either engine (for comparing with a name
    Berth gave it: a snapshot's tag)."""
    found = set()
    for tag in tags:
        for registry in IMPLICIT_REGISTRIES:
            if tag.startswith(registry):
                tag = tag.removeprefix(registry)
                break
        found.add(tag)
    return found


def engine_of(version: Mapping[str, Any]) -> str:
    """The engine behind a /version answer: Podman names itself among the components."""
    components: Sequence[Mapping[str, Any]] = version.get("Components") or []
    if any("podman" in str(part.get("Name", "")).lower() for part in components):
        return PODMAN
    return DOCKER


def libpod_api_version(version: Mapping[str, Any]) -> str:
    """The version of Podman's own API, from the Podman component of /version."""
    for part in version.get("Components") or []:
        if "podman" in str(part.get("Name", "")).lower():
            details = part.get("Details") or {}
            return str(details.get("APIVersion") or part.get("Version") or "4.0.0")
    raise ValueError("the engine is not Podman")


def engine_kind(client: Any) -> str:
    """`docker` or `podman` for a docker.DockerClient."""
    return engine_of(client.version())


def podman_network(client: Any, name: str) -> dict[str, Any]:
    """Podman's own record of a network (`network_interface`, `subnets[].lease_range`, …)."""
    api = client.api
    version = libpod_api_version(client.version())
    response = api.get(f"{api.base_url}/v{version}/libpod/networks/{name}/json", timeout=60)
    response.raise_for_status()
    record: dict[str, Any] = response.json()
    return record
