"""ContainerSpawner without an engine: settings, options form, image policy, state, progress."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from berth.spawner import ContainerSpawner, images
from berth.spawner.errors import SpawnException
from berth.spawner.progress import ProgressLog


def make_spawner(name: str = "", **config: Any) -> ContainerSpawner:
    c = Config()
    for key, value in config.items():
        setattr(c.ContainerSpawner, key, value)
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/")
    user = SimpleNamespace(name="Alice", url="/user/Alice/", escaped_name="Alice")
    orm_spawner = SimpleNamespace(name=name, display_name=name, server=None)
    return ContainerSpawner(config=c, user=user, hub=hub, orm_spawner=orm_spawner)


def test_defaults() -> None:
    sp = make_spawner()
    assert (sp.ip, sp.port, sp.cmd, sp.remove) == ("0.0.0.0", 8888, None, True)
    assert sp.format_string("{prefix}-{username}{server_suffix}") == "berth--41lice"
    assert make_spawner("gpu").format_string("{username}{server_suffix}") == "-41lice_gpu"


async def test_options_form_only_with_a_choice() -> None:
    assert await make_spawner().get_options_form() == ""
    assert await make_spawner(allowed_images=["a:1"]).get_options_form() == ""
    form = await make_spawner(
        allowed_images={"Python <3>": "py:1", "R": "r:1"}, image="r:1"
    ).get_options_form()
    assert '<option value="Python &lt;3&gt;">Python &lt;3&gt;</option>' in form
    assert '<option value="R" selected>R</option>' in form
    form = await make_spawner(allowed_images=lambda sp: ["x:1", "y:1"]).get_options_form()
    assert "x:1" in form and "y:1" in form
    assert await make_spawner(options_form="<b>custom</b>").get_options_form() == "<b>custom</b>"


def test_options_from_form() -> None:
    sp = make_spawner()
    assert sp.run_options_from_form({"image": ["R"]}) == {"image": "R"}
    assert sp.run_options_from_form({}) == {}


@pytest.mark.parametrize(
    ("allowed", "requested", "chosen"),
    [
        ({}, None, "default:1"),
        ({}, "default:1", "default:1"),
        ({"A": "a:1", "B": "b:1"}, "B", "b:1"),
        ({"A": "a:1", "B": "b:1"}, "b:1", "b:1"),
        ({"A": "a:1", "B": "b:1"}, None, "a:1"),
        ({"A": "a:1", "D": "default:1"}, None, "default:1"),
        ({"A": "a:1"}, ["A"], "a:1"),
    ],
)
def test_choose_image(allowed: dict[str, str], requested: object, chosen: str) -> None:
    assert images.choose_image("default:1", allowed, requested) == chosen


@pytest.mark.parametrize("forged", ["evil:latest", "A ", ["A", "B"], {"image": "a:1"}, 3])
def test_choose_image_refuses_anything_else(forged: object) -> None:
    with pytest.raises(SpawnException) as info:
        images.choose_image("default:1", {"A": "a:1"}, forged)
    assert info.value.status_code == 403
    assert "not one of the images you may choose" in info.value.message


async def test_forged_image_is_refused_before_any_engine_call() -> None:
    sp = make_spawner(allowed_images=["a:1", "b:1"], docker_url="unix:///nonexistent.sock")
    sp.user_options = {"image": "evil:latest"}
    with pytest.raises(SpawnException) as info:
        await sp.start()
    assert info.value.status_code == 403


async def test_unreachable_engine_is_a_clear_503() -> None:
    sp = make_spawner(docker_url="unix:///tmp/berth-test-no-such-engine.sock")
    with pytest.raises(SpawnException) as info:
        await sp.start()
    assert info.value.status_code == 503
    assert "not reachable" in info.value.message
    assert await sp.poll() == 0  # never started


async def test_state_round_trip_and_poll_contract() -> None:
    sp = make_spawner()
    assert sp.get_state() == {}
    assert await sp.poll() == 0  # not initialised: "not running"
    sp.load_state({"container_id": "abc", "container_name": "berth--41lice"})
    assert sp.get_state() == {"container_id": "abc", "container_name": "berth--41lice"}
    fresh = make_spawner()
    fresh.load_state(sp.get_state())
    assert fresh.container_id == "abc"
    fresh.clear_state()
    assert fresh.get_state() == {}
    await fresh.stop()  # nothing to stop: no error


async def test_callable_limits_reach_spec_and_env() -> None:
    sp = make_spawner(
        mem_limit=lambda spawner: "1G" if spawner.user.name == "Alice" else "2G",
        cpu_limit=lambda spawner: 1.5,
        volumes={"{prefix}-{username}": "/home/jovyan/work"},
        environment={"NB_UID": "1010"},
    )
    spec = await sp._build_spec("img:1")
    assert spec.resources.mem_limit == 1024**3
    assert spec.resources.cpu_limit == 1.5
    assert spec.mounts[0].source == "berth--41lice"
    assert spec.privileges.user == "root"
    env = spec.environment  # the resolved limits, whatever order things were called in
    assert env["MEM_LIMIT"] == str(1024**3)
    assert env["CPU_LIMIT"] == "1.5"
    assert "MEM_LIMIT" not in sp.get_env()  # never the repr of a callable


async def test_bad_name_template_is_a_config_error() -> None:
    sp = make_spawner(name_template="{username}")  # "-41lice" starts with "-"
    with pytest.raises(SpawnException) as info:
        await sp._build_spec("img:1")
    assert info.value.reason == "config"


async def test_progress_log_followers_see_every_event() -> None:
    log = ProgressLog()
    seen: list[list[int]] = [[], []]

    async def follow(i: int) -> None:
        async for event in log.follow():
            seen[i].append(event["progress"])

    tasks = [asyncio.create_task(follow(0))]
    log.add({"progress": 1})
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(follow(1)))  # late follower replays
    log.add({"progress": 2})
    await asyncio.sleep(0)
    log.add({"progress": 3})
    log.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert seen == [[1, 2, 3], [1, 2, 3]]


def test_pull_progress_events() -> None:
    p = images.PullProgress("img:1")
    assert p.event({"status": "Pulling from library/img"}) == {
        "message": "Pulling img:1: Pulling from library/img"
    }
    first = p.event(
        {"id": "l1", "status": "Downloading", "progressDetail": {"current": 0, "total": 100}}
    )
    assert first is not None and first["progress"] == 10
    p.event({"id": "l2", "status": "Downloading", "progressDetail": {"current": 50, "total": 100}})
    done = p.event({"id": "l1", "status": "Pull complete"})
    assert done is not None and done["progress"] == 10 + int(0.75 * 50)


def test_pull_progress_counts_layers_when_the_engine_gives_no_bytes() -> None:
    """Podman 4.3's compatible pull: layer states without byte counts, each layer announced
    once the one before it is fetched. Before, every message said "0 of 0 MB"; the percentage
    cannot know how many layers are left, so it stays until the pull ends."""
    p = images.PullProgress("img:1")
    records = [
        {"status": "Already exists", "progressDetail": {}, "id": "a"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "b"},
        {"status": "Download complete", "progressDetail": {}, "id": "b"},
        {"status": "Download complete", "progressDetail": {}, "id": "b"},  # Podman repeats it
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "c"},
        {"status": "Download complete", "progressDetail": {}, "id": "c"},
    ]
    shown = "Pulling img:1: {} layers fetched, 1 here already"
    assert [p.event(r) for r in records] == [
        {"progress": 10, "message": shown.format(0)},
        {"progress": 10, "message": shown.format(0)},
        {"progress": 10, "message": shown.format(1)},
        {"progress": 10, "message": shown.format(1)},
        {"progress": 10, "message": shown.format(1)},
        {"progress": 10, "message": shown.format(2)},
    ]


def test_pull_progress_turns_to_bytes_once_the_engine_gives_them() -> None:
    """Docker: layers are announced before their sizes; the first byte count switches the
    message to megabytes, and the percentage follows the bytes from there."""
    p = images.PullProgress("img:1")
    assert p.event({"status": "Already exists", "id": "a"}) == {
        "progress": 10,
        "message": "Pulling img:1: 0 layers fetched, 1 here already",
    }
    p.event({"status": "Pulling fs layer", "id": "b"})
    record = {"status": "Downloading", "id": "b", "progressDetail": {"current": 1e6, "total": 4e6}}
    assert p.event(record) == {"progress": 22, "message": "Pulling img:1: 1 of 4 MB (2 layers)"}
    assert p.event({"status": "Pull complete", "id": "b"}) == {
        "progress": 60,
        "message": "Pulling img:1: 4 of 4 MB (2 layers)",
    }


async def test_progress_follower_opened_before_start_sees_the_new_spawn() -> None:
    log = ProgressLog()
    log.add({"progress": 90, "message": "last spawn"})
    log.close()
    log.reset()  # clear_state() before the next start
    seen: list[str] = []

    async def follow() -> None:
        async for event in log.follow():
            seen.append(event["message"])

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)
    log.reset()  # a second reset (start() on a closed log) must not strand the follower
    log.add({"progress": 5, "message": "new spawn"})
    log.close()
    await asyncio.wait_for(task, 2)
    assert seen == ["new spawn"]


def test_boot_ceiling_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """16 per CPU (one per 512 MiB of memory at most) as the adaptive admission's ceiling;
    CPUs + 1 as a fixed count."""
    from berth.spawner import limits

    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    monkeypatch.setattr(limits, "host_memory", lambda: 24 * 1024**3)
    assert make_spawner().max_concurrent_boots == 48  # memory: 96 slots; CPUs: 16 x 6
    assert limits.default_boot_ceiling(cpus=2, host_total=24 * 1024**3) == 32
    assert limits.default_boot_ceiling(cpus=2, host_total=4 * 1024**3) == 8
    assert limits.default_boot_ceiling(cpus=2, host_total=1024**3) == 3  # CPUs + 1 at least
    assert make_spawner(adaptive_admission=False).max_concurrent_boots == 7
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # the OS does not say
    assert make_spawner(adaptive_admission=False).max_concurrent_boots == 3
    assert make_spawner(max_concurrent_boots=0).max_concurrent_boots == 0


def test_jupyterhubs_clock_covers_the_queue_and_the_boot() -> None:
    """JupyterHub's start_timeout runs while a spawn is queued: its default leaves the queue
    465 s beside the 120 s boot budget; one set lower splits in half as before."""
    from berth.spawner.container import queue_wait

    spawner = make_spawner()
    assert (spawner.start_timeout, spawner.boot_timeout) == (600, 120)
    assert queue_wait(600, 120) == 465
    assert queue_wait(120, 120) == 60


async def test_limits_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails on main before the change: user servers had no pids, memory or CPU limit."""
    from berth.spawner import limits

    # A host like this one: 24 GiB, 2 CPUs.
    monkeypatch.setattr(limits, "host_memory", lambda: 24 * 1024**3)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    sp = make_spawner()
    spec = await sp._build_spec("img:1")
    hc = specs_host_config(spec)
    assert hc["pids_limit"] == 1024
    assert hc["mem_limit"] == hc["memswap_limit"] == 2 * 1024**3
    assert hc["nano_cpus"] == 1_000_000_000


async def test_limits_can_be_turned_off() -> None:
    sp = make_spawner(mem_limit=0, cpu_limit=None, pids_limit=0)
    hc = specs_host_config(await sp._build_spec("img:1"))
    assert not {"pids_limit", "mem_limit", "memswap_limit", "nano_cpus"} & set(hc)
    assert "MEM_LIMIT" not in sp.get_env()


@pytest.mark.parametrize(
    ("host", "cpus", "mem", "cpu"),
    [
        (24 * 1024**3, 2, 2 * 1024**3, 1.0),
        (4 * 1024**3, 8, 1024**3, 2.0),
        (512 * 1024**2, 1, 256 * 1024**2, 1.0),
        (0, 0, 2 * 1024**3, 1.0),
    ],
)
def test_default_limits_follow_the_host(host: int, cpus: int, mem: int, cpu: float) -> None:
    from berth.spawner import limits

    assert (limits.default_mem_limit(host), limits.default_cpu_limit(cpus)) == (mem, cpu)


def test_limits_described() -> None:
    from berth.spawner import limits

    assert limits.describe(2 * 1024**3, 1.0, 1024) == "memory 2 GiB, 1 CPU, 1024 processes"
    assert limits.describe(None, 1.5, 0) == "no memory limit, 1.5 CPUs, no process limit"


def specs_host_config(spec: Any) -> dict[str, Any]:
    from berth.spawner import specs

    return specs.host_config_kwargs(spec)


def test_account_key_survives_a_database_round_trip() -> None:
    from datetime import UTC, datetime

    from berth.spawner.container import account_key

    aware = SimpleNamespace(id=7, created=datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC))
    naive = SimpleNamespace(id=7, created=datetime(2026, 11, 26, 10, 0, 0))
    assert account_key(aware) == account_key(naive) == ("7", "2026-11-26T10:00:00")
    assert account_key(SimpleNamespace(name="x")) == ("", "")
