"""The engine layer: no single thread in front of engine calls; pull progress reaches events."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest
import requests.exceptions
import urllib3.exceptions

from berth.spawner import engine_api as engine_mod
from berth.spawner import images
from berth.spawner.engine_api import Engine
from berth.spawner.errors import SpawnException, is_unreachable, never_sent


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


def refused_call() -> requests.exceptions.ConnectionError:
    """What docker-py raises when the guard's socket is gone or refuses (the guard restarting)."""
    reason = urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionRefusedError(111, "Connection refused")
    )
    return requests.exceptions.ConnectionError(reason)


def test_only_calls_that_never_reached_the_engine_count_as_never_sent() -> None:
    assert never_sent(refused_call())
    missing = urllib3.exceptions.ProtocolError("Connection aborted.", FileNotFoundError(2, "x"))
    assert never_sent(requests.exceptions.ConnectionError(missing))
    # Reset or cut mid-answer: the engine may have acted on it; a busy engine: not "never".
    reset = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "x"))
    assert not never_sent(requests.exceptions.ConnectionError(reset))
    assert not never_sent(requests.exceptions.ReadTimeout("read timed out"))
    busy = docker.errors.APIError("x", SimpleNamespace(status_code=503), explanation="busy")
    assert not never_sent(busy) and not is_unreachable(busy)


async def test_a_call_refused_while_the_guard_restarts_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On main a spawn or stop that met the restarting guard failed at once."""
    monkeypatch.setattr(engine_mod, "RECONNECT_PAUSE", 0.0)
    eng = Engine(base_url="unix:///run/berth-test/guard.sock", workers=2, reconnect_seconds=5)
    monkeypatch.setitem(engine_mod._clients, (eng.base_url, 2, eng.timeout), object())
    failures = [refused_call(), refused_call()]

    def call() -> str:
        if failures:
            raise failures.pop()
        return "started"

    assert await eng.run(call) == "started"


async def test_an_engine_that_never_answered_fails_at_once_and_a_reset_is_not_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_mod, "RECONNECT_PAUSE", 0.0)
    eng = Engine(base_url="unix:///run/berth-test/never.sock", workers=2, reconnect_seconds=5)
    calls = []

    def refused() -> None:
        calls.append(1)
        raise refused_call()

    with pytest.raises(requests.exceptions.ConnectionError):
        await eng.run(refused)  # no client was ever made for it: a wrong address
    assert len(calls) == 1
    monkeypatch.setitem(engine_mod._clients, (eng.base_url, 2, eng.timeout), object())
    reset = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "x"))

    def cut() -> None:
        calls.append(1)
        raise requests.exceptions.ConnectionError(reset)

    with pytest.raises(requests.exceptions.ConnectionError):
        await eng.run(cut)  # it may have reached the engine: never sent twice
    assert len(calls) == 2


async def test_reconnecting_gives_up_after_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "RECONNECT_PAUSE", 0.01)
    eng = Engine(base_url="unix:///run/berth-test/gone.sock", workers=2, reconnect_seconds=0.1)
    monkeypatch.setitem(engine_mod._clients, (eng.base_url, 2, eng.timeout), object())

    def refused() -> None:
        raise refused_call()

    with pytest.raises(requests.exceptions.ConnectionError):
        await eng.run(refused)
