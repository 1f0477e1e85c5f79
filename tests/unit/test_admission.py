"""Boot admission (berth/spawner/admission.py): the limit as a pure function, and the queue's
order, fairness and slot hand-back with a fake clock and fake host samples."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from berth.spawner.admission import (
    Admission,
    Policy,
    Signals,
    boot_limit,
    hold_seconds,
    next_waiter,
    queue_message,
    read_runnable,
)

TWO_CORES = Policy(adaptive=True, ceiling=16, cpus=2, target=60.0)


@pytest.mark.parametrize(
    ("signals", "limit"),
    [
        # A quiet host: CPUs + 1.
        (Signals(booting=0, outside=0.0, boot_seconds=None, share_seconds=None), 3),
        (Signals(booting=3, outside=0.0, boot_seconds=1.5, share_seconds=0.5), 3),
        # Nothing known about the host (not Linux): CPUs + 1.
        (Signals(booting=2, outside=None, boot_seconds=None, share_seconds=None), 3),
        # Others' runnable tasks add as many slots, up to the ceiling.
        (Signals(booting=3, outside=6.0, boot_seconds=3.0, share_seconds=1.0), 9),
        (Signals(booting=3, outside=196.0, boot_seconds=3.0, share_seconds=1.0), 16),
        # Slow boots under the target (60 s) are the outside load's doing: no cut.
        (Signals(booting=2, outside=40.0, boot_seconds=50.0, share_seconds=25.0), 16),
        # Over it: 60 s / 8 s per boot sharing the host, whatever the outside load...
        (Signals(booting=12, outside=187.0, boot_seconds=96.0, share_seconds=8.0), 7),
        # ...but never below one boot per CPU.
        (Signals(booting=3, outside=196.0, boot_seconds=200.0, share_seconds=100.0), 2),
    ],
)
def test_boot_limit(signals: Signals, limit: int) -> None:
    assert boot_limit(TWO_CORES, signals) == limit


def test_boot_limit_fixed_and_off() -> None:
    loaded = Signals(booting=3, outside=196.0, boot_seconds=90.0, share_seconds=60.0)
    assert boot_limit(Policy(adaptive=False, ceiling=3, cpus=2, target=30.0), loaded) == 3
    assert boot_limit(Policy(adaptive=True, ceiling=0, cpus=2, target=30.0), loaded) == 0
    # A ceiling below the CPU count is still the ceiling.
    assert boot_limit(Policy(adaptive=True, ceiling=1, cpus=2, target=30.0), loaded) == 1


def test_hold_grows_with_slow_boots() -> None:
    assert [hold_seconds(10, b) for b in (None, 1.0, 5.0, 40.0)] == [10, 10, 15.0, 120.0]


def test_queue_messages() -> None:
    assert [queue_message(n, 3) for n in (0, 1, 7)] == [
        "Waiting for the host to take another server's start-up (3 starting now; you are "
        "next). Waiting here does not use up the time your server has to start.",
        "Waiting for the host to take another server's start-up (3 starting now; 1 server is "
        "ahead of yours). Waiting here does not use up the time your server has to start.",
        "Waiting for the host to take another server's start-up (3 starting now; 7 servers are "
        "ahead of yours). Waiting here does not use up the time your server has to start.",
    ]


def test_next_waiter_skips_users_already_booting() -> None:
    assert next_waiter(["ann", "bob"], []) == 0
    assert next_waiter(["ann", "bob", "ann"], ["ann"]) == 1
    assert next_waiter(["ann", "ann"], ["ann"]) is None


def test_read_runnable(tmp_path: Path) -> None:
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("8.58 4.32 2.59 16/532 25108\n")
    assert read_runnable(loadavg) == 16.0
    loadavg.write_text("garbage\n")
    assert read_runnable(loadavg) is None
    assert read_runnable(tmp_path / "missing") is None


class Host:
    """A fake host: others' runnable tasks (its run queue shows them, the hub and our boots)
    and a clock the test moves."""

    def __init__(self, outside: float = 0.0) -> None:
        self.outside = outside
        self.now = 0.0

    def admission(self, ceiling: int = 16, adaptive: bool = True) -> Admission:
        queue = Admission(sample=lambda: self.outside + 1 + queue.booting, clock=lambda: self.now)
        queue.policy = Policy(adaptive=adaptive, ceiling=ceiling, cpus=2, target=60.0)
        return queue


class Boots:
    """Spawns going through one Admission; each boots until the test lets it finish."""

    def __init__(self, queue: Admission) -> None:
        self.queue = queue
        self.inside: list[str] = []
        self.order: list[str] = []
        self.positions: dict[str, list[int]] = {}
        self.finish: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, user: str | None = None, wait: float = 60.0) -> None:
        self.finish[name] = asyncio.Event()
        self.positions[name] = []
        self.tasks[name] = asyncio.ensure_future(self._boot(name, user or name, wait))

    async def _boot(self, name: str, user: str, wait: float) -> None:
        def on_position(ahead: int, booting: int) -> None:
            self.positions[name].append(ahead)

        async with self.queue.slot(user, on_position, wait) as answered:
            self.inside.append(name)
            self.order.append(name)
            try:
                await self.finish[name].wait()
                answered()
            finally:
                self.inside.remove(name)

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)


async def test_a_quiet_host_boots_cpus_plus_one_at_once_in_arrival_order() -> None:
    boots = Boots(Host().admission())
    for name in "abcdef":
        boots.start(name)
    await boots.settle()
    assert boots.inside == ["a", "b", "c"]
    assert {n: boots.positions[n] for n in "def"} == {"d": [0], "e": [1], "f": [2]}
    boots.finish["b"].set()
    await boots.settle()
    assert boots.inside == ["a", "c", "d"]
    assert {n: boots.positions[n] for n in "ef"} == {"e": [1, 0], "f": [2, 1]}
    for event in boots.finish.values():
        event.set()
    await asyncio.wait_for(asyncio.gather(*boots.tasks.values()), 2)
    assert boots.order == list("abcdef")
    assert (boots.queue.booting, boots.queue.queued) == (0, 0)


async def test_a_loaded_host_admits_more_and_a_slow_one_fewer() -> None:
    host = Host(outside=11.0)
    boots = Boots(host.admission())
    for name in "abcdefghijklmnop":
        boots.start(name)
    await boots.settle()
    # 11 runnable tasks of others: 3 + 11 = 14 (the queue samples the host at each spawn).
    assert len(boots.inside) == 14
    # Those boots take 120 s each (over the 60 s target), 14 sharing the host: 8.6 s per
    # boot shared, so the next admission comes at 60 / 8.6 = 7 booting.
    host.now = 120.0
    for name in boots.inside[:1]:
        boots.finish[name].set()
    await boots.settle()
    assert len(boots.inside) == 13  # nobody admitted
    assert boots.queue.limit() == 7
    for event in boots.finish.values():
        event.set()
    await asyncio.wait_for(asyncio.gather(*boots.tasks.values()), 2)


async def test_one_user_holds_one_slot_and_cannot_jump_the_queue() -> None:
    """A user starting several servers at once (named servers) boots them one at a time and
    lets the users behind them go first."""
    boots = Boots(Host().admission())
    boots.start("ann-1", "ann")
    boots.start("ann-2", "ann")
    boots.start("ann-3", "ann")
    boots.start("bob", "bob")
    boots.start("cat", "cat")
    await boots.settle()
    assert boots.inside == ["ann-1", "bob", "cat"]
    boots.finish["bob"].set()
    await boots.settle()
    assert boots.inside == ["ann-1", "cat"]  # ann's next waits for her first
    boots.finish["ann-1"].set()
    await boots.settle()
    assert boots.inside == ["cat", "ann-2"]
    for event in boots.finish.values():
        event.set()
    await asyncio.wait_for(asyncio.gather(*boots.tasks.values()), 2)


async def test_a_user_hammering_start_and_stop_goes_to_the_back() -> None:
    """A stop cancels the start; each re-request queues behind everyone already waiting, and a
    cancelled spawn leaves neither a queue entry nor a held slot."""
    boots = Boots(Host().admission(ceiling=1, adaptive=False))
    boots.start("ann")
    boots.start("bob")
    boots.start("cat")
    await boots.settle()
    for _ in range(5):
        boots.tasks["bob"].cancel()  # bob stops his pending start...
        await boots.settle()
        boots.start("bob")  # ...and asks again
        await boots.settle()
    assert (boots.queue.booting, boots.queue.queued) == (1, 2)
    boots.tasks["ann"].cancel()  # the one booting is stopped: its slot comes back
    await boots.settle()
    assert boots.inside == ["cat"]
    boots.finish["cat"].set()
    await boots.settle()
    assert boots.inside == ["bob"]
    boots.finish["bob"].set()
    await asyncio.wait_for(boots.tasks["bob"], 2)
    assert (boots.queue.booting, boots.queue.queued) == (0, 0)


async def test_a_boot_that_fails_gives_its_slot_back() -> None:
    queue = Host().admission(ceiling=1, adaptive=False)

    async def failing() -> None:
        async with queue.slot("ann", lambda a, b: None, 60):
            raise RuntimeError("container killed while booting")

    with pytest.raises(RuntimeError):
        await failing()
    assert queue.booting == 0
    async with queue.slot("bob", lambda a, b: None, 0.5):
        assert queue.booting == 1


def real_time_admission(ceiling: int) -> Admission:
    queue = Admission(sample=lambda: None)  # the loop's timers and the clock agree
    queue.policy = Policy(adaptive=False, ceiling=ceiling, cpus=2, target=60.0)
    return queue


async def test_a_hanging_boot_gives_its_slot_back_after_the_hold() -> None:
    queue = real_time_admission(ceiling=1)
    queue.hold_floor = 0.05
    hang = asyncio.ensure_future(_hold(queue, "ann", 60))
    await asyncio.sleep(0.01)
    entered = asyncio.get_running_loop().time()
    async with queue.slot("bob", lambda a, b: None, 30):
        assert queue.booting == 1  # bob's; ann's boot goes on without a slot
    assert asyncio.get_running_loop().time() - entered < 5
    hang.cancel()
    await asyncio.gather(hang, return_exceptions=True)
    assert (queue.booting, queue.queued) == (0, 0)


async def test_a_spawn_waits_in_the_queue_at_most_wait_seconds() -> None:
    """The queue never fails a spawn: past `wait` it boots without a slot."""
    queue = Host().admission(ceiling=1, adaptive=False)
    queue.hold_floor = 60
    hang = asyncio.ensure_future(_hold(queue, "ann", 60))
    await asyncio.sleep(0.01)
    async with queue.slot("bob", lambda a, b: None, 0.05):
        assert (queue.booting, queue.queued) == (1, 0)  # ann's slot; bob has none
    hang.cancel()
    await asyncio.gather(hang, return_exceptions=True)
    assert queue.booting == 0


async def test_the_limit_follows_the_host_while_spawns_wait() -> None:
    """With no boot ending, the queue still looks at the host (every SAMPLE_EVERY): when the
    others' load appears, more boots are admitted."""
    host = Host()
    boots = Boots(host.admission())
    boots.queue.sample_every = 0.01
    for name in "abcdef":
        boots.start(name)
    await boots.settle()
    assert len(boots.inside) == 3
    host.outside = 30.0
    await asyncio.sleep(0.2)
    assert len(boots.inside) == 6
    for event in boots.finish.values():
        event.set()
    await asyncio.wait_for(asyncio.gather(*boots.tasks.values()), 2)


async def test_no_limit_admits_everyone() -> None:
    boots = Boots(Host().admission(ceiling=0))
    for name in "abcdefgh":
        boots.start(name)
    await boots.settle()
    assert len(boots.inside) == 8
    for event in boots.finish.values():
        event.set()
    await asyncio.wait_for(asyncio.gather(*boots.tasks.values()), 2)


async def _hold(queue: Admission, user: str, seconds: float) -> None:
    async with queue.slot(user, lambda a, b: None, 60):
        await asyncio.sleep(seconds)


async def test_boot_time_per_boot_sharing_the_host() -> None:
    """Two boots side by side for 10 s, then one alone for 10 s more: 5 s of boot per boot
    sharing the host for the first (also the second's so far), 13.3 s for the second in the
    end (20 s beside a mean of 1.5 boots); the median of the two is 9.2."""
    host = Host()
    boots = Boots(host.admission())
    boots.start("a")
    boots.start("b")
    await boots.settle()
    host.now = 10.0
    boots.finish["a"].set()
    await boots.settle()
    assert boots.queue.share_estimate() == 5.0
    host.now = 20.0
    boots.finish["b"].set()
    await boots.settle()
    assert boots.queue.share_estimate() == pytest.approx((5 + 20 / 1.5) / 2)
    assert boots.queue.limit() == 3  # boots well within the target: CPUs + 1


async def test_boots_all_slow_together_keep_their_slots() -> None:
    """On a loaded host every boot is slow: a boot gives its slot back only when it takes
    three times as long as the boots beside it, not at the floor of the hold."""
    queue = real_time_admission(ceiling=2)
    queue.hold_floor = 0.05
    boots = [asyncio.ensure_future(_hold(queue, user, 0.4)) for user in ("ann", "bob", "cat")]
    await asyncio.sleep(0.25)  # five times the floor
    assert (queue.booting, queue.queued) == (2, 1)
    await asyncio.wait_for(asyncio.gather(*boots), 5)
    assert (queue.booting, queue.queued) == (0, 0)
