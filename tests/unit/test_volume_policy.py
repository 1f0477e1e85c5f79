"""Whose is an existing volume: the pure check made before mounting it (volume_policy)."""

from __future__ import annotations

import pytest

from berth.spawner import specs, volume_policy, volumes
from berth.spawner.specs import Identity, Mount

ALICE = Identity("alice", "", "ContainerSpawner", "berth", "7", "2026-11-26T10:00:00")
PERSONAL = Mount("berth-alice-data", "/home/jovyan/work")
SHARED = Mount("berth-course", "/home/jovyan/course", read_only=True, per_user=False)


def own(**changes: str) -> dict[str, str]:
    return {**specs.labels(ALICE, role=specs.ROLE_VOLUME), **changes}


HUB_DATA = {"berth.managed": "true", "berth.role": "hub-data"}  # as `berth up` creates it


@pytest.mark.parametrize(
    ("labels", "adopt", "refused_because"),
    [
        (own(), False, None),
        (own(**{"berth.server": "gpu"}), False, None),  # a volume shared by the user's servers
        ({k: v for k, v in own().items() if not k.startswith("berth.user-")}, False, None),
        (HUB_DATA, False, "hub's own data volume"),
        (HUB_DATA, True, "hub's own data volume"),
        ({}, False, "no owner labels"),
        (None, False, "no owner labels"),
        ({"com.example": "x"}, False, "no owner labels"),
        ({}, True, None),  # adopt_unlabelled_volumes: a migration from DockerSpawner
        (own(**{"berth.role": "volume-init"}), False, "not a user's volume"),
        (own(**{"berth.prefix": "other"}), False, "another Berth deployment"),
        (own(**{"berth.prefix": "other"}), True, "another Berth deployment"),
        (own(**{"berth.user": "hub"}), False, "another user ('hub')"),
        (own(**{"berth.user": "bob"}), True, "another user ('bob')"),
        (own(**{"berth.user-id": "3"}), False, "earlier account named 'alice'"),
        (own(**{"berth.user-created": "2026-11-25T09:00:00"}), False, "earlier account"),
        (own(**{"berth.user-created": "2026-11-26T10:00:01"}), False, None),  # rounded by the DB
    ],
)
def test_personal_volume(labels: dict | None, adopt: bool, refused_because: str | None) -> None:
    refusal = volume_policy.refusal(PERSONAL, labels, ALICE, adopt)
    if refused_because is None:
        assert refusal is None
    else:
        assert refusal is not None and refused_because in refusal
        assert "berth-alice-data" in refusal and "dministrator" in refusal


def test_the_hub_user_attack() -> None:
    """Fails on main before the change: a template 'berth-{username}-data'... and a user named
    'hub' mounted berth-hub-data, the hub's database and secrets, with no check at all."""
    hub_user = Identity("hub", "", "ContainerSpawner", "berth", "9", "2026-11-26T11:00:00")
    mount = Mount("berth-hub-data", "/home/jovyan/work")
    assert "hub's own data volume" in (volume_policy.refusal(mount, HUB_DATA, hub_user) or "")


@pytest.mark.parametrize(
    ("labels", "refused"),
    [({}, False), (own(), False), (HUB_DATA, True), ({"berth.managed": "true"}, False)],
)
def test_shared_volume_only_never_the_hubs(labels: dict, refused: bool) -> None:
    assert (volume_policy.refusal(SHARED, labels, ALICE) is not None) == refused


def test_created_volumes_name_their_owner() -> None:
    kwargs = volumes.volume_create_kwargs("berth-alice-data", ALICE)
    assert kwargs == {
        "name": "berth-alice-data",
        "driver": "local",
        "labels": {
            "berth.managed": "true",
            "berth.role": "volume",
            "berth.user": "alice",
            "berth.server": "",
            "berth.spawner": "ContainerSpawner",
            "berth.prefix": "berth",
            "berth.user-id": "7",
            "berth.user-created": "2026-11-26T10:00:00",
        },
    }
    shared = volumes.volume_create_kwargs("berth-course", ALICE, specs.ROLE_SHARED_VOLUME)
    assert shared["labels"] == {
        "berth.managed": "true",
        "berth.role": "shared-volume",
        "berth.user": "",
        "berth.server": "",
        "berth.spawner": "ContainerSpawner",
        "berth.prefix": "berth",
    }
    assert volume_policy.creation_role(SHARED) == "shared-volume"
    assert volume_policy.creation_role(PERSONAL) == "volume"
