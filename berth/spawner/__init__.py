"""JupyterHub spawners that run each user's server in a container.

``c.JupyterHub.spawner_class = "berth"`` selects :class:`ContainerSpawner` (registered as the
``berth`` entry point of ``jupyterhub.spawners``). :class:`BerthSpawner` is the base of every
back end.
"""

from .base import BerthSpawner
from .container import ContainerSpawner

__all__ = ["BerthSpawner", "ContainerSpawner"]
