"""The guard's watch on its upstream socket: after a dockerd restart the bind-mounted socket is
the old, dead one (berth/engine_socket.py), so the guard ends once connecting to it has been
refused for LOST_AFTER_SECONDS, and its restart policy (the engine's ``unless-stopped``, the
Swarm's ``any``) starts it again with the new socket.

Meanwhile every request gets a 503 from the guard (server.py), and while it restarts its socket
is gone; the hub's spawner takes both as "engine unreachable" (a poll then says nothing about
the server) and sends calls that never reached the engine again for a while
(berth/spawner/engine_api.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from berth import engine_socket
from berth.engine_socket import CHECK_SECONDS, LOST_AFTER_SECONDS, EngineLost

log = logging.getLogger("berth.guard")


async def watch(
    socket_path: str,
    check_seconds: float = CHECK_SECONDS,
    lost_after: float = LOST_AFTER_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Never return; raise :class:`EngineLost` once the engine's socket is lost."""
    silence = engine_socket.Silence(lost_after)
    while True:
        refused = await asyncio.to_thread(engine_socket.refused, socket_path)
        now = clock()
        if refused and silence.refused_since is None:
            log.warning("the engine's socket %s refuses connections", socket_path)
        if silence.observe(refused, now):
            seconds = silence.refused_for(now)
            raise EngineLost(engine_socket.lost_message("berth-engine-guard", seconds))
        await asyncio.sleep(check_seconds)
