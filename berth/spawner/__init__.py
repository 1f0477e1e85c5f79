"""JupyterHub spawners that run each user's server in a container.

``c.JupyterHub.spawner_class = "berth"`` selects :class:`ContainerSpawner`,
``"berth-system-users"`` selects :class:`SystemUserSpawner` (servers run as the host account of
the user's name); both are entry points of ``jupyterhub.spawners``.
"""

from .base import BerthSpawner
from .container import ContainerSpawner
from .system import SystemUserSpawner

__all__ = ["BerthSpawner", "ContainerSpawner", "SystemUserSpawner"]
