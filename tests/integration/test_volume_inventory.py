"""User volumes are found by the deployment's labels, whatever their names look like.

`berth down --delete-data` and `berth backup` list a deployment's user volumes through
berth.deploy.inventory. These volumes are made as the spawner labels them; nothing is deleted
(other deployments on this engine keep theirs: the test only lists).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from berth import names
from berth.config import config_from_data
from berth.deploy import backup, status
from berth.deploy.layout import SPAWNER_PREFIX
from berth.spawner import specs

# Starts with a field: no fixed text before "{" to select names by.
TEMPLATE = "{prefix}-{username}-home"


@pytest.fixture
def volumes(docker_client: Any) -> Iterator[dict[str, Any]]:
    tag = uuid.uuid4().hex[:6]
    user = f"tidy-inventory-{tag}"
    mine = names.render(TEMPLATE, names.template_namespace(SPAWNER_PREFIX, user))
    other_user = f"tidy-other-{tag}"
    other = names.render(TEMPLATE, names.template_namespace(SPAWNER_PREFIX, other_user))
    made = {
        # The deployment's user volume, labelled as the spawner labels it.
        "mine": docker_client.volumes.create(
            mine,
            labels=specs.labels(
                specs.Identity(user, prefix=SPAWNER_PREFIX), role=specs.ROLE_VOLUME
            ),
        ),
        # The same name shape, but another deployment's (another spawner prefix).
        "other": docker_client.volumes.create(
            other,
            labels=specs.labels(
                specs.Identity(other_user, prefix=f"berth-test-{tag}"), role=specs.ROLE_VOLUME
            ),
        ),
        # A name of the template's shape without Berth's labels: not Berth's.
        "unlabelled": docker_client.volumes.create(f"berth-tidy-unlabelled-{tag}-home"),
    }
    try:
        yield made
    finally:
        for volume in made.values():
            volume.remove(force=True)


def test_user_volumes_are_found_by_label_not_name_prefix(docker_client: Any, volumes) -> None:
    """Fails on main before this change: data_volumes() took the text before the template's
    first "{" as a name prefix, found "" here and so skipped every user volume."""
    cfg = config_from_data({"storage": {"volume_name_template": TEMPLATE}})
    found = {volume.name for volume in status.data_volumes(docker_client, cfg)}
    assert volumes["mine"].name in found
    assert volumes["other"].name not in found
    assert volumes["unlabelled"].name not in found
    backed_up = {volume.name for volume in backup.user_volumes(docker_client, cfg)}
    assert volumes["mine"].name in backed_up
    assert volumes["other"].name not in backed_up
