"""Boot admission: which queued server boots next, and how many boot at once.

A Jupyter server's start-up is CPU-bound. On a quiet host, about one boot per core keeps the CPU
busy and lets the first servers of a burst be ready early; more only makes every boot late. On a
host loaded by others, each booting container gets about one runnable task's share of the CPU,
so a fixed CPUs + 1 left a burst with a sliver of the machine for minutes. The limit is
therefore decided at each admission from what the host shows (:func:`boot_limit`, pure):

- the base is CPUs + 1 (the quiet optimum, measured);
- runnable tasks on the host that are not our boots (its run queue, smoothed) add as many slots:
  our boots then get about the share of the CPU they would have on a quiet host;
- but once recent boots take longer than ``target`` seconds (a third of the boot timeout), no
  more than keep a boot within it: boot time grows with the boots sharing the CPU, so recent
  boots tell the seconds a boot takes per boot beside it, and the limit is the target divided by
  that (a boot that times out is the one failure worse than a slow burst). Below the target
  this is not applied: on a host loaded by others a boot can take 30 s however few of ours
  run, and cutting then only slows the burst;
- within [``floor``, ``ceiling``].

The queue is first come, first served, with one rule for fairness: a user holds at most one
slot, so a user starting several servers cannot take the slots of the people behind them (their
next server waits, and the next user in line goes first). A slot is given back when the boot
ends however it ends (answered, failed, cancelled by a stop or by JupyterHub), or when it has
taken much longer than recent boots (:func:`hold_seconds`), so a hanging server cannot hold up
the others. A spawn waits in the queue at most ``wait`` seconds and then boots without a slot:
the queue orders boots and never fails one.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RECENT_BOOTS = 8  # finished boots the boot-time estimate looks at
HOLD_FACTOR = 3.0  # a boot taking this many times the recent boot time stops holding its slot
SAMPLE_EVERY = 1.0  # seconds between two looks at the host while spawns are queued
SMOOTHING = 0.3  # weight of a new run-queue sample in the running average


@dataclass(frozen=True)
class Policy:
    """What the spawner's settings say about admission."""

    adaptive: bool
    ceiling: int  # max_concurrent_boots; 0: no limit
    cpus: int
    target: float  # seconds a boot should take at most (a third of the boot timeout)

    @property
    def base(self) -> int:
        return self.cpus + 1


@dataclass(frozen=True)
class Signals:
    """What the host shows at one admission decision."""

    booting: int  # boots holding a slot now
    outside: float | None  # others' runnable tasks on the host, smoothed; None: unknown
    boot_seconds: float | None  # recent boot time (Admission.boot_estimate); None: none yet
    share_seconds: float | None  # the same per boot sharing the host (Admission.share_estimate)


def boot_limit(policy: Policy, signals: Signals) -> int:
    """How many boots may hold a slot now (0: no limit). See the module docstring."""
    if policy.ceiling <= 0:
        return 0
    if not policy.adaptive:
        return policy.ceiling
    floor = min(policy.cpus, policy.ceiling)
    limit = policy.base
    if signals.outside is not None:
        limit += int(signals.outside)
    if signals.boot_seconds and signals.share_seconds and signals.boot_seconds > policy.target:
        # Boots of a burst share the CPU: one takes about share_seconds times the boots
        # running beside it (itself included).
        limit = min(limit, int(policy.target / signals.share_seconds))
    return max(floor, min(policy.ceiling, limit))


def hold_seconds(hold_floor: float, boot_seconds: float | None) -> float:
    """How long one boot may hold its slot: ``boot_slot_hold`` at least, and long enough for a
    boot as slow as recent ones (a loaded host makes every boot slow, not only a hanging one)."""
    if boot_seconds is None:
        return hold_floor
    return max(hold_floor, HOLD_FACTOR * boot_seconds)


def queue_message(ahead: int, booting: int) -> str:
    """The spawn page's line for a spawn waiting in the queue."""
    if ahead == 0:
        place = "you are next"
    elif ahead == 1:
        place = "1 server is ahead of yours"
    else:
        place = f"{ahead} servers are ahead of yours"
    return (
        f"Waiting for the host to take another server's start-up ({booting} starting now; "
        f"{place}). Waiting here does not use up the time your server has to start."
    )


def next_waiter(users: Sequence[str], holders: Sequence[str]) -> int | None:
    """Index of the first queued user who holds no slot yet (None: nobody may go now)."""
    busy = set(holders)
    for index, user in enumerate(users):
        if user not in busy:
            return index
    return None


def read_runnable(path: Path = Path("/proc/loadavg")) -> float | None:
    """Runnable tasks on the host right now (the 4th field of /proc/loadavg: "running/total"),
    the reader included; None where the file is missing or unreadable (not Linux)."""
    try:
        return float(path.read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class _Boot:
    user: str
    since: float
    shared: float = 0.0  # the integral over its time of the boots holding a slot (boot-seconds)
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


@dataclass
class _Waiter:
    user: str
    on_position: Callable[[int, int], None]
    admitted: asyncio.Future[None]
    last_position: int = -1
    boot: _Boot | None = None


class Admission:
    """The queue and the slots of one hub process (one per event loop; see :func:`admission`)."""

    def __init__(
        self,
        sample: Callable[[], float | None] = read_runnable,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sample = sample
        self._clock = clock
        self._queue: list[_Waiter] = []
        self._holding: list[_Boot] = []
        self._recent: deque[float] = deque(maxlen=RECENT_BOOTS)  # seconds of finished boots
        self._recent_share: deque[float] = deque(maxlen=RECENT_BOOTS)  # the same per boot shared
        self._changed_at = clock()  # when the boots holding a slot last changed
        self._outside: float | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.policy = Policy(adaptive=True, ceiling=0, cpus=1, target=30.0)
        self.hold_floor = 10.0
        self.sample_every = SAMPLE_EVERY

    # -- what the decisions look at -------------------------------------------------------------
    @property
    def booting(self) -> int:
        return len(self._holding)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def boot_estimate(self, leaving_out: _Boot | None = None) -> float | None:
        """Recent boot time: the median of the last finished boots, or the median age of the
        boots in progress (but ``leaving_out``) when that is larger (boots slowing down show
        before they finish)."""
        now = self._clock()
        finished = statistics.median(self._recent) if self._recent else None
        ages = [now - boot.since for boot in self._holding if boot is not leaving_out]
        running = statistics.median(ages) if ages else None
        known = [value for value in (finished, running) if value is not None]
        return max(known) if known else None

    def share_estimate(self) -> float | None:
        """Recent seconds of boot per boot sharing the host: a finished boot's time divided by
        the mean number of boots holding a slot while it ran, or the same of the boots in
        progress when larger."""
        now = self._clock()
        finished = statistics.median(self._recent_share) if self._recent_share else None
        since_change = (now - self._changed_at) * len(self._holding)
        shared = [
            _per_share(now - boot.since, boot.shared + since_change) for boot in self._holding
        ]
        running = statistics.median(shared) if shared else None
        known = [value for value in (finished, running) if value is not None]
        return max(known) if known else None

    def signals(self) -> Signals:
        return Signals(self.booting, self._outside, self.boot_estimate(), self.share_estimate())

    def limit(self) -> int:
        return boot_limit(self.policy, self.signals())

    def _look_at_host(self) -> None:
        """Sample the run queue: what is not our boots or the hub itself is others' work."""
        sample = self._sample()
        if sample is None:
            return
        outside = max(0.0, sample - self.booting - 1)
        if self._outside is None:
            self._outside = outside
        else:
            self._outside += SMOOTHING * (outside - self._outside)

    # -- admitting ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Admit whoever may go now, then tell the others their place."""
        while self._queue:
            limit = self.limit()
            if limit and self.booting >= limit:
                break
            index = next_waiter([w.user for w in self._queue], [b.user for b in self._holding])
            if index is None:
                break
            waiter = self._queue.pop(index)
            waiter.boot = self._take(waiter.user)  # counted at once, before the next decision
            if not waiter.admitted.done():
                waiter.admitted.set_result(None)
        for ahead, waiter in enumerate(self._queue):
            if ahead != waiter.last_position:
                waiter.last_position = ahead
                waiter.on_position(ahead, self.booting)

    def _take(self, user: str) -> _Boot:
        self._account()
        boot = _Boot(user, self._clock())
        self._arm(boot, hold_seconds(self.hold_floor, self.boot_estimate()))
        self._holding.append(boot)
        return boot

    def _arm(self, boot: _Boot, seconds: float) -> None:
        boot.timer = asyncio.get_running_loop().call_later(seconds, self._expire, boot)

    def _account(self) -> None:
        """Before the boots holding a slot change: each of them shared the host with all of
        them since the last change."""
        now = self._clock()
        for boot in self._holding:
            boot.shared += (now - self._changed_at) * len(self._holding)
        self._changed_at = now

    def _expire(self, boot: _Boot) -> None:
        """A boot held its slot too long, judged by the boots beside it (all slow on a loaded
        host: none of them is hanging): it boots on, without a slot."""
        if boot not in self._holding:
            return
        hold = hold_seconds(self.hold_floor, self.boot_estimate(leaving_out=boot))
        age = self._clock() - boot.since
        if age < hold:
            self._arm(boot, hold - age)
            return
        self._account()
        if boot in self._holding:
            self._holding.remove(boot)
            self._pump()

    def _finish(self, boot: _Boot, answered: bool) -> None:
        if boot.timer is not None:
            boot.timer.cancel()
        self._account()
        if answered:
            seconds = self._clock() - boot.since
            self._recent.append(seconds)
            self._recent_share.append(_per_share(seconds, boot.shared))
        if boot in self._holding:
            self._holding.remove(boot)
        self._pump()

    async def _tick(self) -> None:
        """While spawns are queued, look at the host now and then: the limit follows the load
        even when no boot ends."""
        while self._queue:
            await asyncio.sleep(self.sample_every)
            self._look_at_host()
            self._pump()
        self._ticker = None

    @contextlib.asynccontextmanager
    async def slot(
        self,
        user: str,
        on_position: Callable[[int, int], None],
        wait: float,
    ) -> AsyncIterator[Callable[[], None]]:
        """Queue for a slot, then hold it while the body boots the server.

        Yields a function the body calls once the server answers (the boot's time then feeds
        the estimate). The slot is given back when the body ends, however it ends; a spawn
        cancelled while queued (a stop, JupyterHub's timeout) leaves the queue."""
        self._look_at_host()
        loop = asyncio.get_running_loop()
        waiter = _Waiter(user, on_position, loop.create_future())
        self._queue.append(waiter)
        self._pump()
        if waiter.boot is None and self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick())
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation (a stop,
            # JupyterHub's timeout) that lands just as the slot is granted.
            async with asyncio.timeout(wait):
                await asyncio.shield(waiter.admitted)
        except TimeoutError:
            pass  # waited long enough: boot without a slot rather than risk the start timeout
        except BaseException:
            self._leave(waiter, answered=False)
            raise
        boot = waiter.boot
        if boot is None:
            self._leave(waiter, answered=False)
            yield lambda: None
            return
        answered = False

        def mark_answered() -> None:
            nonlocal answered
            answered = True

        try:
            yield mark_answered
        finally:
            self._leave(waiter, answered)

    def _leave(self, waiter: _Waiter, answered: bool) -> None:
        """The spawn is done with the queue: out of it if still queued, its slot given back."""
        if waiter in self._queue:
            self._queue.remove(waiter)
            self._pump()
        if waiter.boot is not None:
            boot, waiter.boot = waiter.boot, None
            self._finish(boot, answered)


def _per_share(seconds: float, shared: float) -> float:
    """A boot's seconds divided by the mean number of boots it shared the host with."""
    if seconds <= 0:
        return 0.0
    return seconds / max(1.0, shared / seconds)


_admissions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Admission]
_admissions = weakref.WeakKeyDictionary()


def admission() -> Admission:
    """The admission queue of this hub process (per event loop, so tests stay apart)."""
    loop = asyncio.get_running_loop()
    found = _admissions.get(loop)
    if found is None:
        found = _admissions[loop] = Admission()
    return found
