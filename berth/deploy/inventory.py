"""This deployment's objects on the engine, found by their labels, never by name.

Names are the operator's to choose (``storage.volume_name_template`` may start with a field,
``{prefix}-{username}-home``), and another deployment or a test on the same engine may use the
same names' shapes; the labels the spawner puts on what it creates say whose each object is.
"""

from __future__ import annotations

import docker
from docker.models.volumes import Volume

from berth.deploy.layout import SPAWNER_PREFIX
from berth.labels import LABEL_MANAGED, LABEL_PREFIX, LABEL_ROLE, ROLE_VOLUME

#: Engine filters for the users' volumes of this deployment (its spawner's prefix).
USER_VOLUMES = {
    "label": [
        f"{LABEL_MANAGED}=true",
        f"{LABEL_ROLE}={ROLE_VOLUME}",
        f"{LABEL_PREFIX}={SPAWNER_PREFIX}",
    ]
}


def user_volumes(client: docker.DockerClient) -> list[Volume]:
    """Every user volume the deployment's spawner created, whatever its name template."""
    return sorted(client.volumes.list(filters=USER_VOLUMES), key=lambda volume: volume.name)
