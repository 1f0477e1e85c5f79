"""This deployment's objects on the engine, found by their labels, never by name.

Names are the operator's to choose (``storage.volume_name_template`` may start with a field,
``{prefix}-{username}-home``), and another deployment or a test on the same engine may use the
same names' shapes; the labels the spawner puts on what it creates say whose each object is.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def is_user_volume(labels: Mapping[str, str] | None) -> bool:
    """Whether a volume's labels carry every one of USER_VOLUMES' `key=value` filters."""
    wanted = dict(item.split("=", 1) for item in USER_VOLUMES["label"])
    return all((labels or {}).get(key) == value for key, value in wanted.items())


def user_volumes(client: docker.DockerClient) -> list[Volume]:
    """Every user volume the deployment's spawner created, whatever its name template.

    The engine's filter narrows the list, and the labels are checked again here: Podman 4.3's
    compatible API lists a volume that matches any one of several `label` filters, not all of
    them, so it also listed another deployment's user volumes (another spawner prefix), which
    `berth down --delete-data` would then have removed.
    """
    listed = client.volumes.list(filters=USER_VOLUMES)
    mine = [volume for volume in listed if is_user_volume(volume.attrs.get("Labels"))]
    return sorted(mine, key=lambda volume: volume.name)
