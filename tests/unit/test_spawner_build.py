"""The seam: pure builders fed plain inputs, and a spawner whose engine is an interface."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from berth import names
from berth.spawner import ContainerSpawner, build, specs
from berth.spawner.base import BerthSpawner
from berth.spawner.engine_api import DockerEngine, EngineAPI
from berth.spawner.errors import SpawnException

ALICE = specs.Identity("alice", "", "ContainerSpawner", "berth", "7", "2026-11-26T10:00:00")


def inputs(**changes: Any) -> build.SpecInputs:
    base: dict[str, Any] = {
        "image": "img:1",
        "identity": ALICE,
        "namespace": names.template_namespace("berth", "alice"),
        "name_template": "{prefix}-{username}{server_suffix}",
        "environment": {"JUPYTERHUB_API_TOKEN": "t", "MEM_LIMIT": "stale"},
        "resources": specs.Resources(mem_limit=2 * 1024**3, cpu_limit=1.0, pids_limit=1024),
        "volumes": {"{prefix}-{username}": "/home/jovyan/work"},
        "read_only_volumes": {"course": "/home/jovyan/course"},
    }
    base.update(changes)
    return build.SpecInputs(**base)


def test_container_spec_from_plain_inputs() -> None:
    assert build.container_spec(inputs()) == specs.ContainerSpec(
        name="berth-alice",
        image="img:1",
        identity=ALICE,
        command=None,
        environment={
            "JUPYTERHUB_API_TOKEN": "t",
            "MEM_LIMIT": str(2 * 1024**3),
            "CPU_LIMIT": "1.0",
        },
        mounts=[
            specs.Mount("berth-alice", "/home/jovyan/work", False, per_user=True),
            specs.Mount("course", "/home/jovyan/course", True, per_user=False),
        ],
        resources=specs.Resources(mem_limit=2 * 1024**3, cpu_limit=1.0, pids_limit=1024),
        networking=specs.Networking(),
        privileges=specs.Privileges(user=None),
    )


def test_root_switches_and_command_come_through() -> None:
    spec = build.container_spec(
        inputs(environment={"NB_UID": "1010"}, command=("start.sh", "--x"), run_as_root=False)
    )
    assert spec.privileges.user == "root" and spec.command == ["start.sh", "--x"]


@pytest.mark.parametrize(
    "changes",
    [{"name_template": "{username}x{nope}"}, {"volumes": {"v": "relative"}}],
)
def test_config_mistakes_are_spawn_errors(changes: dict[str, Any]) -> None:
    with pytest.raises(SpawnException) as info:
        build.container_spec(inputs(**changes))
    assert info.value.reason == "config"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("2G", 1.5, 1024, "1G", 0.5), specs.Resources(2 * 1024**3, 1.5, 1024**3, 0.5, 1024)),
        ((0, 0, 0, None, None), specs.Resources()),
        ((None, None, None, None, None), specs.Resources()),
    ],
)
def test_resources(given: tuple[Any, ...], expected: specs.Resources) -> None:
    assert build.resources(*given) == expected


def test_bad_limit_is_a_config_error() -> None:
    with pytest.raises(SpawnException) as info:
        build.resources("lots", None)
    assert info.value.reason == "config"


class FakeEngine:
    """Satisfies EngineAPI structurally: no inheritance, no type-ignores."""

    def __init__(self) -> None:
        self.inspected: list[str] = []

    async def inspect_image(self, image: str) -> dict[str, Any] | None:
        return None

    async def pull(self, image: str, on_event: Any) -> None:
        return None

    async def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return None

    async def create_volume(self, kwargs: dict[str, Any]) -> None:
        return None

    async def run_to_completion(self, kwargs: dict[str, Any], timeout: float) -> tuple[int, str]:
        return 0, ""

    async def inspect_container(self, name_or_id: str) -> dict[str, Any] | None:
        self.inspected.append(name_or_id)
        return {"Id": name_or_id, "State": {"Running": True}}

    async def create_container(self, kwargs: dict[str, Any]) -> str:
        return "c1"

    async def start_container(self, container_id: str) -> None:
        return None

    async def stop_container(self, container_id: str, timeout: int) -> None:
        return None

    async def remove_container(self, container_id: str) -> None:
        return None

    async def wait_container(self, container_id: str, timeout: float) -> int:
        return 0

    async def logs_tail(self, container_id: str, lines: int = 20) -> str:
        return ""

    async def exec_run(self, container_id: str, cmd: list[str]) -> tuple[int, str]:
        return 0, ""


def make_spawner() -> ContainerSpawner:
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/")
    user = SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice")
    orm_spawner = SimpleNamespace(name="", display_name="", server=None)
    return ContainerSpawner(config=Config(), user=user, hub=hub, orm_spawner=orm_spawner)


async def test_the_engine_is_an_interface() -> None:
    fake = FakeEngine()
    api: EngineAPI = fake  # what a type checker verifies: the fake has every operation
    sp = make_spawner()
    assert isinstance(sp.engine, DockerEngine)  # the default back end
    assert sp.engine is sp.engine  # made once
    sp.engine = api
    sp.load_state({"container_id": "abc", "container_name": "berth-alice"})
    assert await sp.poll() is None
    assert fake.inspected == ["abc"]


def test_base_is_abstract_and_shared() -> None:
    assert issubclass(ContainerSpawner, BerthSpawner)
    assert ContainerSpawner.state_fields == ("container_id", "container_name")
