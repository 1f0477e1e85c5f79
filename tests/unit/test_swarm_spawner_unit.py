"""SwarmSpawner without an engine: settings, docs, entry point, service spec, state."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from berth.spawner import SwarmSpawner
from berth.spawner.errors import SpawnException


def make_spawner(**config: Any) -> SwarmSpawner:
    c = Config()
    for key, value in config.items():
        setattr(c.SwarmSpawner, key, value)
    hub = SimpleNamespace(public_host="", api_url="http://hub:8081/hub/api", base_url="/hub/")
    user = SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice")
    orm_spawner = SimpleNamespace(name="", display_name="", server=None)
    return SwarmSpawner(config=c, user=user, hub=hub, orm_spawner=orm_spawner)


async def test_placement_per_image_and_pinning_to_the_volume_node() -> None:
    sp = make_spawner(
        network_name="ov",
        volumes={"{prefix}-{username}": "/home/jovyan/work"},
        placement_constraints=lambda s: ["node.role == worker"],
        image_placement={"big:1": {"constraints": ["node.labels.bigmem == true"]}},
        stop_timeout=3,
    )
    sp.volume_node = "n0de"
    spec = await sp._service_spec("big:1")
    assert spec.placement.constraints == ("node.role == worker", "node.labels.bigmem == true")
    assert spec.pinned_node == "n0de"
    assert spec.stop_grace_seconds == 3
    assert (await sp._service_spec("other:1")).placement.constraints == ("node.role == worker",)


async def test_shared_policy_uses_the_driver_and_does_not_pin() -> None:
    sp = make_spawner(
        network_name="ov",
        volumes={"{prefix}-{username}": "/home/jovyan/work"},
        volume_policy="shared",
        volume_driver_options={"type": "nfs", "o": "addr=10.0.0.5", "device": ":/h/{username}"},
    )
    sp.volume_node = "n0de"
    spec = await sp._service_spec("i:1")
    assert spec.pinned_node == ""
    assert dict(spec.volume_driver.options)["device"] == ":/h/alice"


async def test_shared_policy_without_shared_storage_is_a_config_error() -> None:
    sp = make_spawner(network_name="ov", volume_policy="shared")
    with pytest.raises(SpawnException, match="shared storage"):
        await sp._service_spec("i:1")


def test_the_volume_node_outlives_a_stop() -> None:
    sp = make_spawner()
    sp.load_state({"service_id": "s1", "task_id": "t1", "volume_node": "n0de"})
    assert (sp.service_id, sp.task_id, sp.volume_node) == ("s1", "t1", "n0de")
    sp.clear_state()
    assert (sp.service_id, sp.task_id) == ("", "")
    assert sp.get_state() == {"volume_node": "n0de"}


async def test_only_the_users_own_volumes_pin_the_server() -> None:
    sp = make_spawner(network_name="ov", volumes={"course-material": "/home/jovyan/course"})
    sp.volume_node = "n0de"
    assert (await sp._service_spec("i:1")).pinned_node == ""


class NoEngine:
    """An engine that fails the test if the spawner asks it anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was asked {name!r}")


async def test_an_image_off_the_allow_list_is_refused_before_the_swarm_is_asked() -> None:
    """An attacker's REST call asking for their own image gets a 403; no service is created."""
    sp = make_spawner(network_name="ov", image="ok:1", allowed_images=["ok:1", "also-ok:1"])
    sp.engine = NoEngine()  # type: ignore[assignment]
    sp.user_options = {"image": "evil/miner:latest"}
    with pytest.raises(SpawnException) as caught:
        await sp.start()
    assert caught.value.status_code == 403
