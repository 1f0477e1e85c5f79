"""JupyterHub spawners that run each user's server in a container.

``c.JupyterHub.spawner_class = "berth"`` selects :class:`ContainerSpawner` (registered as the
``berth`` entry point of ``jupyterhub.spawners``); ``"berth-swarm"`` selects
:class:`SwarmSpawner`, one Swarm service per server.
"""

from .container import ContainerSpawner
from .swarm import SwarmSpawner

__all__ = ["ContainerSpawner", "SwarmSpawner"]
