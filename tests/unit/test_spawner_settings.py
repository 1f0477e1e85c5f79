"""Every spawner back end: registered as a JupyterHub spawner, and each of its own settings
configurable, explained in its help and named in docs/spawner.md (one check for all three)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from berth.spawner import ContainerSpawner, SwarmSpawner, SystemUserSpawner
from berth.spawner.settings import ContainerSettings
from berth.spawner.swarm_settings import SwarmSettings

DOC = (Path(__file__).parents[2] / "docs" / "spawner.md").read_text()

# (entry point, spawner class, the class holding its own settings, how many at least)
BACK_ENDS = [
    ("berth", ContainerSpawner, ContainerSettings, 20),
    ("berth-swarm", SwarmSpawner, SwarmSettings, 8),
    ("berth-system-users", SystemUserSpawner, SystemUserSpawner, 1),
]


@pytest.mark.parametrize(("entry_point", "spawner", "settings", "at_least"), BACK_ENDS)
def test_back_end_is_registered_and_its_settings_configurable_and_documented(
    entry_point: str, spawner: type, settings: type, at_least: int
) -> None:
    (ep,) = [e for e in entry_points(group="jupyterhub.spawners") if e.name == entry_point]
    assert ep.load() is spawner
    own = settings.class_own_traits()
    assert len(own) >= at_least
    for name, trait in own.items():
        assert trait.metadata.get("config") is True, name
        assert trait.help and len(trait.help) > 20, name
    missing = [name for name in own if f"`{name}`" not in DOC]
    assert not missing, f"docs/spawner.md does not mention: {missing}"
