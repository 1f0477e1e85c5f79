"""Boot admission in a real JupyterHub with real containers (berth/spawner/admission.py).

A hub with two fixed boot slots and a 60 s boot budget; "hang-*" users' servers never answer
(their container only sleeps), so they hold a slot until something ends their boot. What is
checked is what users see and whether every slot comes back, never how fast: a queued spawn
shows its place and is not charged for the wait, a hanging boot or a container killed while
booting gives its slot back, a user hammering start/stop neither jumps the queue nor leaves a
container behind, a user's several servers take one slot at a time, and a burst of spawns all
answer with the adaptive default.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hub_harness import Hub
from hub_marks import HUB_MARKS

pytestmark = HUB_MARKS

BOOT_TIMEOUT = 60

SPAWNER_CONFIG = """
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "never"
c.ContainerSpawner.start_timeout = 600
c.ContainerSpawner.boot_timeout = BOOT_TIMEOUT
c.ContainerSpawner.adaptive_admission = False
c.ContainerSpawner.max_concurrent_boots = 2
c.ContainerSpawner.boot_slot_hold = 600  # only the end of a boot gives a slot back here
# Answer spawn requests at once (202): the tests follow the progress stream.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}

def extra_create_kwargs(spawner):
    if spawner.user.name.startswith("hang") or spawner.name.startswith("hang"):  # never answers
        return {{"command": ["sleep", "600"]}}
    return {{}}

c.ContainerSpawner.extra_create_kwargs = extra_create_kwargs
""".replace("BOOT_TIMEOUT", str(BOOT_TIMEOUT))

QUEUED = "Waiting for the host to take another server's start-up"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub"), SPAWNER_CONFIG)
    try:
        yield h.start()
    finally:
        h.cleanup()


def request(hub: Hub, user: str, server: str = "") -> None:
    hub.create_user(user)
    answer = hub.request_spawn(user, server)
    assert answer.status_code in {201, 202}, answer.text


def progress_until(hub: Hub, user: str, wanted: str, server: str = "") -> list[str]:
    """The spawn's progress messages until one contains ``wanted`` (or the stream ends)."""
    u = requests.utils.quote(user, safe="")
    path = f"/users/{u}/servers/{server}/progress" if server else f"/users/{u}/server/progress"
    messages: list[str] = []
    with hub.api("GET", path, stream=True, timeout=120) as answer:
        assert answer.status_code == 200, answer.text
        for line in answer.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                messages.append(json.loads(line[len("data:") :]).get("message", ""))
                if wanted in messages[-1]:
                    break
    return messages


def wait_queued(hub: Hub, user: str, server: str = "") -> str:
    messages = progress_until(hub, user, QUEUED, server)
    assert QUEUED in messages[-1], messages
    return messages[-1]


def wait_failed(hub: Hub, user: str, timeout: float = BOOT_TIMEOUT + 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = hub.user_model(user)
        if "" not in (model.get("servers") or {}) and not model.get("pending"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{user}'s spawn did not end:\n{hub.log_tail()}")


def hub_log(hub: Hub) -> str:
    return Path(hub.workdir / "hub.log").read_text(errors="replace")


def admitted_order(hub: Hub, names: list[str]) -> list[str]:
    """The order in which the hub log says these servers were admitted to boot."""
    found = re.findall(r"Boot of (\S+) admitted after", hub_log(hub))
    return [name for name in found if name in names]


def user_containers(hub: Hub, user: str) -> list[str]:
    return hub.made_here("containers", user)


def test_a_hanging_boot_times_out_alone_and_the_queued_spawn_is_not_charged(hub: Hub) -> None:
    """Servers that never answer hold both slots, two more wait behind them; a spawn queued
    last sees its place, waits there longer than its whole boot budget (two rounds of hanging
    boots failing with the boot-timeout message), and still starts. Fails on main: there the
    queue wait counted against the start timeout, and the spawn page showed no place."""
    for user in ("hang-a", "hang-b"):
        request(hub, user)
        progress_until(hub, user, "Waiting for the server to answer")
    for user in ("hang-c", "hang-d"):
        request(hub, user)
        wait_queued(hub, user)
    request(hub, "patient")
    assert "2 servers are ahead of yours" in wait_queued(hub, "patient")
    hub.wait_ready("patient", timeout=3 * BOOT_TIMEOUT + 60)
    for user in ("hang-a", "hang-b", "hang-c", "hang-d"):
        wait_failed(hub, user)
        assert user_containers(hub, user) == []
    log = hub_log(hub)
    assert log.count(f"did not start within {BOOT_TIMEOUT} seconds") >= 4, hub.log_tail()
    waited = re.search(r"Boot of patient admitted after ([\d.]+)s", log)
    assert waited and float(waited[1]) > BOOT_TIMEOUT, hub.log_tail()
    hub.stop("patient")


def test_a_container_killed_while_booting_gives_its_slot_back(hub: Hub) -> None:
    """Both slots held by servers whose containers are then killed from outside: their spawns
    fail at once and the next spawn boots (were the slots kept, it would wait out the 600 s
    hold and wait_ready would give up)."""
    for user in ("hang-k1", "hang-k2"):
        request(hub, user)
        progress_until(hub, user, "Waiting for the server to answer")
    request(hub, "after-kill")
    wait_queued(hub, "after-kill")
    for user in ("hang-k1", "hang-k2"):
        hub.docker.containers.get(user_containers(hub, user)[0]).kill()
    for user in ("hang-k1", "hang-k2"):
        wait_failed(hub, user, timeout=60)
    hub.wait_ready("after-kill", timeout=120)
    assert "killed while starting" in hub_log(hub)
    hub.stop("after-kill")


def test_a_user_hammering_start_and_stop_cannot_jump_the_queue(hub: Hub) -> None:
    """While the slots are taken, `ham` starts and stops five times; `dora`, queued after
    ham's first request, boots before ham's last one, and ham has one container in the end."""
    for user in ("hang-h1", "hang-h2"):
        request(hub, user)
        progress_until(hub, user, "Waiting for the server to answer")
    request(hub, "ham")
    wait_queued(hub, "ham")
    request(hub, "dora")
    wait_queued(hub, "dora")
    for _ in range(5):
        hub.stop("ham")
        request(hub, "ham")
    wait_queued(hub, "ham")
    for user in ("hang-h1", "hang-h2"):
        hub.stop(user)
    hub.wait_ready("dora", timeout=120)
    hub.wait_ready("ham", timeout=120)
    assert admitted_order(hub, ["dora", "ham"]) == ["dora", "ham"]
    assert len(user_containers(hub, "ham")) == 1
    for user in ("dora", "ham"):
        hub.stop(user)


def test_one_user_boots_one_server_at_a_time(hub: Hub) -> None:
    """nia asks for two named servers (both hang while booting), then omar for his; as the two
    slots come free, nia's first and omar's boot, and nia's second waits for her first. Fails
    on main: a user could take every slot with her named servers, in arrival order (omar
    would wait behind nia's hanging boots)."""
    for user in ("hang-f1", "hang-f2"):
        request(hub, user)
        progress_until(hub, user, "Waiting for the server to answer")
    for server in ("hang1", "hang2"):
        request(hub, "nia", server)
        wait_queued(hub, "nia", server)
    request(hub, "omar")
    wait_queued(hub, "omar")
    hub.stop("hang-f1")
    hub.stop("hang-f2")
    hub.wait_ready("omar", timeout=120)
    assert admitted_order(hub, ["nia:hang1", "nia:hang2", "omar"]) == ["nia:hang1", "omar"]
    hub.stop("nia", "hang1")
    progress_until(hub, "nia", "Waiting for the server to answer", "hang2")
    assert admitted_order(hub, ["nia:hang2"]) == ["nia:hang2"]
    for user, server in (("nia", "hang2"), ("omar", "")):
        hub.stop(user, server)


BURST_CONFIG = """
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "never"
c.ContainerSpawner.start_timeout = 600
"""


def burst(tmp_path: Path, size: int) -> None:
    """``size`` spawns at once with the default (adaptive) admission: every one answers."""
    h = Hub(tmp_path, BURST_CONFIG)
    try:
        h.start()
        users = [f"burst{i}" for i in range(size)]
        for user in users:
            h.create_user(user)

        def spawn(user: str) -> str:
            answer = h.request_spawn(user)
            if answer.status_code not in {201, 202}:
                return f"{user}: {answer.status_code} {answer.text[:200]}"
            try:
                h.wait_ready(user, timeout=600)
            except AssertionError as exc:
                return f"{user}: {str(exc)[:300]}"
            return ""

        with ThreadPoolExecutor(size) as pool:
            failures = [failure for failure in pool.map(spawn, users) if failure]
        assert failures == [], "\n".join(failures)
    finally:
        h.cleanup()


def test_a_burst_all_answer(tmp_path: Path) -> None:
    burst(tmp_path, 10)


@pytest.mark.full
def test_a_burst_of_forty_all_answer(tmp_path: Path) -> None:
    burst(tmp_path, 40)
