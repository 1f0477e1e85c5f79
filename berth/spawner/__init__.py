"""JupyterHub spawners that run each user's server in a container.

``c.JupyterHub.spawner_class = "berth"`` selects :class:`ContainerSpawner`,
``"berth-system-users"`` selects :class:`SystemUserSpawner` (servers run as the host account of
the user's name), ``"berth-swarm"`` selects :class:`SwarmSpawner` (one Swarm service per
server); all are entry points of ``jupyterhub.spawners``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import BerthSpawner
    from .container import ContainerSpawner
    from .swarm import SwarmSpawner
    from .system import SystemUserSpawner

__all__ = ["BerthSpawner", "ContainerSpawner", "SwarmSpawner", "SystemUserSpawner"]

# Each imported when first named (as its entry point does): a hub that runs containers never
# loads the Swarm and system-user spawners (docs/deploy.md, "Hub memory"), and the `berth`
# command, which uses only the pure modules (limits, specs), never imports JupyterHub.
_ON_FIRST_USE = {
    "BerthSpawner": ".base",
    "ContainerSpawner": ".container",
    "SwarmSpawner": ".swarm",
    "SystemUserSpawner": ".system",
}


def __getattr__(name: str) -> Any:
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(_ON_FIRST_USE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
