"""berth.deploy.inventory's own check of a volume's labels (Podman ORs several label filters)."""

from __future__ import annotations

from berth.deploy.inventory import is_user_volume
from berth.deploy.layout import SPAWNER_PREFIX
from berth.labels import LABEL_MANAGED, LABEL_PREFIX, LABEL_ROLE, ROLE_VOLUME

MINE = {LABEL_MANAGED: "true", LABEL_ROLE: ROLE_VOLUME, LABEL_PREFIX: SPAWNER_PREFIX}


def test_only_a_volume_with_every_label_is_this_deployments() -> None:
    assert is_user_volume(MINE)
    assert is_user_volume({**MINE, "other": "x"})
    # What Podman's OR of the filters let through: another deployment's, or no role/managed.
    assert not is_user_volume({**MINE, LABEL_PREFIX: "berth-test-other"})
    assert not is_user_volume({**MINE, LABEL_ROLE: "hub-data"})
    assert not is_user_volume({LABEL_PREFIX: SPAWNER_PREFIX})
    assert not is_user_volume({})
    assert not is_user_volume(None)
