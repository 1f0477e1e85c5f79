"""Boot slots: at most N containers of this hub booting at once (optional).

A Jupyter server's start-up is CPU-bound; on a small host, N servers booting at once share the
CPU and all become ready late, together. With slots, boots queue up in arrival order and the
first ones are ready early. A slot is given back when the server answers, fails, or after
``hold`` seconds at the latest, so one slow or hanging server cannot hold up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]]
_semaphores = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def boot_slot(limit: int, hold: float) -> AsyncIterator[None]:
    if limit <= 0:
        yield
        return
    loop = asyncio.get_running_loop()
    semaphore = _semaphores.setdefault(loop, {}).setdefault(limit, asyncio.Semaphore(limit))
    await semaphore.acquire()
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
