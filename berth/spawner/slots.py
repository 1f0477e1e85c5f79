"""Boot slots: at most N containers of this hub booting at once (optional).

A Jupyter server's start-up is CPU-bound; on a small host, N servers booting at once share the
CPU and all become ready late, together. With slots, boots queue up in arrival order and the
first ones are ready early. A slot is given back when the server answers, fails, or after
``hold`` seconds at the latest, so one slow or hanging server cannot hold up the others.

The queue only orders boots; it must never fail one. JupyterHub's start timeout counts the time
spent waiting here, and on a busy host a long queue (each boot holding its slot up to ``hold``)
outlasts it: 50 spawns behind 2 slots on a loaded 2-core host timed out after 120 s. So a boot
waits at most ``wait`` seconds for a slot and then goes ahead without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]]
_semaphores = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def boot_slot(limit: int, hold: float, wait: float | None = None) -> AsyncIterator[None]:
    """Hold one of ``limit`` slots (0 = no limit) while booting; ``wait``: see the module."""
    if limit <= 0:
        yield
        return
    loop = asyncio.get_running_loop()
    semaphore = _semaphores.setdefault(loop, {}).setdefault(limit, asyncio.Semaphore(limit))
    try:
        await asyncio.wait_for(semaphore.acquire(), wait)
    except TimeoutError:
        yield  # waited long enough: boot without a slot rather than risk the start timeout
        return
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            semaphore.release()

    timer = loop.call_later(hold, release)
    try:
        yield
    finally:
        timer.cancel()
        release()
