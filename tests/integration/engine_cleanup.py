"""Removing what a test made on the engine, every object tried even when one fails."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import docker


def remove_containers(containers: Iterable[Any]) -> list[str]:
    """Force-remove the containers (and their anonymous volumes), newest first; return what
    could not be removed. Already gone is fine."""
    errors = []
    for container in reversed(list(containers)):
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            errors.append(f"{container.name}: {error}")
    return errors


def remove_networks(networks: Iterable[Any]) -> list[str]:
    """Remove the networks; return what could not be removed. Already gone is fine."""
    errors = []
    for network in networks:
        try:
            network.remove()
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            errors.append(f"{network.name}: {error}")
    return errors
