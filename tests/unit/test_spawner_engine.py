"""The engine layer: no single thread in front of engine calls; pull progress reaches events."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from berth.spawner import engine_api as engine_mod
from berth.spawner import images
from berth.spawner.engine_api import Engine
from berth.spawner.errors import SpawnException


async def test_a_blocked_engine_call_does_not_delay_others() -> None:
    eng = Engine(workers=4)
    release = threading.Event()
    slow = asyncio.ensure_future(eng.run(release.wait, 5))  # e.g. a long image pull
    # The other call finishes while the blocked one still waits: a single thread would have
    # run the blocked call to its end (False, after 5 s) first.
    assert await eng.run(lambda: 42) == 42
    assert not slow.done()
    release.set()
    assert await slow is True  # released by us, not by its 5 s timeout


def test_shared_client_pool_matches_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    class FakeAPIClient:
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)

    monkeypatch.setattr(engine_mod.docker, "APIClient", FakeAPIClient)
    monkeypatch.setattr(engine_mod, "_clients", {})
    a = engine_mod.shared_client("unix:///berth-test.sock", 24, 30.0)
    b = engine_mod.shared_client("unix:///berth-test.sock", 24, 30.0)
    assert a is b and len(made) == 1
    assert made[0]["max_pool_size"] == 24
    assert engine_mod.shared_executor(24)._max_workers == 24


class FakePullEngine:
    def __init__(self, records: list[dict[str, Any]], present_after: bool = True) -> None:
        self.records = records
        self.present = False
        self.present_after = present_after

    async def inspect_image(self, image: str) -> dict[str, Any] | None:
        return {"Id": "sha256:x", "Config": {"User": "1000"}} if self.present else None

    async def pull(self, image: str, on_event: Any) -> None:
        for record in self.records:
            on_event(record)
        self.present = self.present_after


async def test_pull_progress_reaches_the_progress_events() -> None:
    records = [
        {"status": "Pulling from berth/base-notebook", "id": "latest"},
        {"status": "Downloading", "id": "l1", "progressDetail": {"current": 5e6, "total": 1e7}},
        {"status": "Downloading", "id": "l2", "progressDetail": {"current": 0, "total": 1e7}},
        {"status": "Pull complete", "id": "l1"},
        {"status": "Pull complete", "id": "l2"},
    ]
    events: list[dict[str, Any]] = []
    fake = FakePullEngine(records)
    info = await images.ensure_image(fake, "img:1", "ifnotpresent", events.append)
    assert info["Id"] == "sha256:x"
    percents = [e["progress"] for e in events if "progress" in e]
    assert percents == sorted(percents) and percents[0] == 10 and percents[-1] == 60
    assert any("10 of 20 MB" in e["message"] for e in events)


@pytest.mark.parametrize("policy", ["never"])
async def test_missing_image_without_pull(policy: str) -> None:
    with pytest.raises(SpawnException) as info:
        await images.ensure_image(FakePullEngine([]), "img:1", policy, print)
    assert info.value.status_code == 400


async def test_present_image_is_not_pulled_unless_always() -> None:
    fake = FakePullEngine([{"status": "x"}])
    fake.present = True
    events: list[dict[str, Any]] = []
    await images.ensure_image(fake, "img:1", "ifnotpresent", events.append)
    assert events == []
    await images.ensure_image(fake, "img:1", "always", events.append)
    assert events and events[-1]["progress"] == 60


class RecordingPullEngine(FakePullEngine):
    def __init__(self) -> None:
        super().__init__([{"status": "Downloaded newer image"}])
        self.pulled: list[str] = []

    async def pull(self, image: str, on_event: Any) -> None:
        self.pulled.append(image)
        await super().pull(image, on_event)


@pytest.mark.parametrize("policy", ["ifnotpresent", "always", "never"])
async def test_berth_images_are_never_pulled(policy: str) -> None:
    """Fails on main before the change: a pruned berth/base-notebook was pulled by name from a
    registry, where anyone may have registered it."""
    fake = RecordingPullEngine()
    with pytest.raises(SpawnException) as info:
        await images.ensure_image(fake, "berth/base-notebook:latest", policy, print)
    assert fake.pulled == []
    assert info.value.status_code == 400
    assert "berth images build base-notebook" in info.value.message
    fake.present = True  # present: used as it is, even with "always"
    await images.ensure_image(fake, "berth/base-notebook:latest", policy, print)
    assert fake.pulled == []


def test_own_images_are_recognised() -> None:
    assert images.is_own_image("berth/scipy-notebook:0.1.0")
    assert not images.is_own_image("quay.io/berth/base-notebook:latest")
    assert not images.is_own_image("jupyter/berth-notebook:latest")
