"""SwarmSpawner without an engine: settings, docs, entry point, service spec, state."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from berth.fence_signal import WAIT_SCRIPT
from berth.spawner import SwarmSpawner
from berth.spawner.errors import SpawnException


class ImageEngine:
    """A manager's engine that knows images' CMDs (``images``) and pulls the rest."""

    def __init__(
        self, images: dict[str, list[str] | None], missing: frozenset[str] = frozenset()
    ) -> None:
        self.images, self.missing, self.pulled = images, set(missing), []

    async def inspect_image(self, image: str) -> dict[str, Any] | None:
        if image in self.missing:
            return None
        return {"Config": {"Entrypoint": ["tini", "-g", "--"], "Cmd": self.images[image]}}

    async def pull(self, image: str, on_event: Any) -> None:
        self.pulled.append(image)
        self.missing.discard(image)


def make_spawner(**config: Any) -> SwarmSpawner:
    c = Config()
    for key, value in config.items():
        setattr(c.SwarmSpawner, key, value)
    hub = SimpleNamespace(public_host="", api_url="http://hub:8081/hub/api", base_url="/hub/")
    user = SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice")
    orm_spawner = SimpleNamespace(name="", display_name="", server=None)
    spawner = SwarmSpawner(config=c, user=user, hub=hub, orm_spawner=orm_spawner)
    spawner.engine = ImageEngine(defaultdict(lambda: ["start-notebook.py"]))  # type: ignore[assignment]
    return spawner


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


# -- the wait for berth-fence -----------------------------------------------------------------


async def test_the_images_command_starts_only_behind_the_wait_for_the_fence() -> None:
    """Without the wait, a server's command (and the user's own start-up code, e.g. a
    jupyter_server_config.py in their home) ran before the fence had written its rules."""
    sp = make_spawner(network_name="ov")
    spec = await sp._service_spec("i:1")
    assert spec.command == ["python3", "-c", WAIT_SCRIPT, "60", "start-notebook.py"]


async def test_a_configured_command_is_wrapped_without_asking_the_engine() -> None:
    sp = make_spawner(network_name="ov", cmd=["jupyterhub-singleuser"], fence_wait=12.5)
    sp.engine = NoEngine()  # type: ignore[assignment]
    spec = await sp._service_spec("i:1")
    assert spec.command == ["python3", "-c", WAIT_SCRIPT, "12.5", "jupyterhub-singleuser"]


async def test_no_wait_leaves_the_command_alone() -> None:
    sp = make_spawner(network_name="ov", fence_wait=0)
    sp.engine = NoEngine()  # type: ignore[assignment]
    assert (await sp._service_spec("i:1")).command is None


async def test_an_image_the_manager_lacks_is_pulled_to_read_its_command() -> None:
    sp = make_spawner(network_name="ov")
    engine = ImageEngine({"reg:5000/i:1": ["start.sh", "lab"]}, missing={"reg:5000/i:1"})
    sp.engine = engine  # type: ignore[assignment]
    spec = await sp._service_spec("reg:5000/i:1")
    assert engine.pulled == ["reg:5000/i:1"]
    assert spec.command == ["python3", "-c", WAIT_SCRIPT, "60", "start.sh", "lab"]


async def test_an_image_without_a_command_is_a_config_error() -> None:
    sp = make_spawner(network_name="ov")
    sp.engine = ImageEngine({"i:1": None})  # type: ignore[assignment]
    with pytest.raises(SpawnException, match="no CMD"):
        await sp._service_spec("i:1")


async def test_a_known_command_is_not_asked_of_the_engine() -> None:
    """`berth up` passes each image's CMD: the hub behind the guard never inspects images."""
    sp = make_spawner(network_name="ov", image_commands={"reg:5000/i:1": ["start.sh", "lab"]})
    sp.engine = NoEngine()  # type: ignore[assignment]
    spec = await sp._service_spec("reg:5000/i:1")
    assert spec.command == ["python3", "-c", WAIT_SCRIPT, "60", "start.sh", "lab"]
