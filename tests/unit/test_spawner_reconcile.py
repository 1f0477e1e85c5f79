"""A hub killed mid-spawn restarts with a server record and no container id: poll reconciles.

A behaviour double of the engine (containers and volumes in dicts) stands in for Docker; the
real engine case is tests/integration/test_faults.py::test_hub_killed_with_five_spawns_in_flight.
Both fail on main before this change (poll answered 0 and left the containers behind).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from traitlets.config import Config

from berth.spawner import ContainerSpawner
from berth.spawner.specs import Identity, labels

ALICE = Identity("Alice", "", "ContainerSpawner", "berth")
NAME = "berth--41lice"  # the default name template for Alice's default server


class FakeEngine:
    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, Any]] = {}

    def add_container(self, name: str, ident: Identity, role: str, running: bool, volume=""):
        self.containers[name] = {
            "Id": f"id-{name}",
            "Name": f"/{name}",
            "Config": {"Labels": labels(ident, role=role)},
            "Labels": labels(ident, role=role),
            "State": {"Running": running, "Status": "running" if running else "created"},
            "Mounts": [{"Type": "volume", "Name": volume}] if volume else [],
        }

    def _find(self, name_or_id: str) -> dict[str, Any] | None:
        for name, record in self.containers.items():
            if name_or_id in (name, record["Id"]):
                return record
        return None

    async def inspect_container(self, name_or_id: str) -> dict[str, Any] | None:
        return self._find(name_or_id)

    async def remove_container(self, container_id: str) -> None:
        record = self._find(container_id)
        if record:
            del self.containers[record["Name"].lstrip("/")]

    async def list_containers(self, wanted: dict[str, str]) -> list[dict[str, Any]]:
        return [
            c
            for c in self.containers.values()
            if all(c["Labels"].get(k) == v for k, v in wanted.items())
        ]

    async def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return self.volumes.get(name)

    async def remove_volume(self, name: str) -> None:
        self.volumes.pop(name, None)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(ContainerSpawner, "engine", property(lambda self: fake))
    return fake


def restarted_spawner(with_server_record: bool = True) -> ContainerSpawner:
    """A spawner as a restarted hub builds it for a spawn it never finished: no state."""
    server = None
    if with_server_record:
        server = orm.Server(proto="http", ip="", port=0, base_url="/user/Alice/", cookie_name="c")
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/")
    user = SimpleNamespace(name="Alice", url="/user/Alice/", escaped_name="Alice")
    orm_spawner = SimpleNamespace(name="", display_name="", server=server)
    return ContainerSpawner(config=Config(), user=user, hub=hub, orm_spawner=orm_spawner)


async def test_a_running_container_is_adopted(engine: FakeEngine) -> None:
    engine.add_container(NAME, ALICE, "single-user", running=True)
    spawner = restarted_spawner()
    assert await spawner.poll() is None
    assert spawner.get_state() == {"container_id": f"id-{NAME}", "container_name": NAME}


async def test_a_container_never_started_and_a_half_prepared_volume_are_removed(
    engine: FakeEngine,
) -> None:
    engine.add_container(NAME, ALICE, "single-user", running=False)
    engine.add_container("eager_turing", ALICE, "volume-init", running=False, volume="vol-alice")
    engine.volumes["vol-alice"] = {"Name": "vol-alice", "Labels": labels(ALICE, role="volume")}
    spawner = restarted_spawner()
    assert await spawner.poll() == 0
    assert engine.containers == {} and engine.volumes == {}
    assert spawner.get_state() == {}


async def test_someone_elses_objects_are_never_touched(engine: FakeEngine) -> None:
    bob = Identity("bob", "", "ContainerSpawner", "berth")
    engine.add_container(NAME, bob, "single-user", running=True)  # a name clash, not Alice's
    engine.add_container("init-bob", bob, "volume-init", running=False, volume="vol-bob")
    engine.volumes["vol-bob"] = {"Name": "vol-bob", "Labels": labels(bob, role="volume")}
    # Alice's interrupted init mounted a volume that is not hers: the container goes, not it.
    engine.add_container("init-alice", ALICE, "volume-init", running=False, volume="vol-bob")
    assert await restarted_spawner().poll() == 0
    assert set(engine.containers) == {NAME, "init-bob"}
    assert set(engine.volumes) == {"vol-bob"}


async def test_without_a_server_record_poll_asks_nothing(engine: FakeEngine) -> None:
    engine.add_container(NAME, ALICE, "single-user", running=True)
    assert await restarted_spawner(with_server_record=False).poll() == 0
    assert NAME in engine.containers  # JupyterHub does not think it runs: not ours to adopt
