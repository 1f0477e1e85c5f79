"""JupyterHub spawners that run each user's server in a container.

``c.JupyterHub.spawner_class = "berth"`` selects :class:`ContainerSpawner`,
``"berth-system-users"`` selects :class:`SystemUserSpawner` (servers run as the host account of
the user's name), ``"berth-swarm"`` selects :class:`SwarmSpawner` (one Swarm service per
server); all are entry points of ``jupyterhub.spawners``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import BerthSpawner
from .container import ContainerSpawner

if TYPE_CHECKING:
    from .swarm import SwarmSpawner
    from .system import SystemUserSpawner

__all__ = ["BerthSpawner", "ContainerSpawner", "SwarmSpawner", "SystemUserSpawner"]

# Imported when first named (as their entry points do): a hub that runs containers never loads
# the Swarm and system-user spawners (docs/deploy.md, "Hub memory").
_ON_FIRST_USE = {"SwarmSpawner": ".swarm", "SystemUserSpawner": ".system"}


def __getattr__(name: str) -> Any:
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(_ON_FIRST_USE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
