"""A bind-mounted engine socket that went stale, and how Berth's socket holders recover.

dockerd makes a new socket file each time it starts. A container that bind-mounts
``/var/run/docker.sock`` keeps the file it was started with: after a dockerd restart (with
live-restore the container keeps running) every connection to that old file is refused, for
ever. Only a restart of the container mounts the new one. So each of Berth's containers that
holds the socket (berth-engine-guard, berth-backup, berth-fence) watches it and exits with
:data:`EXIT_ENGINE_LOST` once every connection has been refused for a while; its restart policy
(the engine's ``unless-stopped``, or the Swarm's) starts it again with the new socket.

Only a refused connection (or a missing file) counts. Nothing can ever listen again on a socket
file whose listener is gone (a new listener always makes a new file), so a refusal is certain;
a busy engine that is slow to answer is not, and restarting the guard then would only cut off
the calls in flight.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

EXIT_ENGINE_LOST = 75  # EX_TEMPFAIL: "try again", which the restart policy does
# The engine guard and berth-fence try their socket every CHECK_SECONDS (a connect to a local
# socket: negligible) and exit once it has refused connections for LOST_AFTER_SECONDS. The hub
# is cut off from the engine until the guard is back, so they are short; a refusal is certain
# (below), so a short grace costs nothing.
CHECK_SECONDS = 1.0
LOST_AFTER_SECONDS = 3.0

# The engine guard's answer when it cannot reach the engine: the hub's spawner recognises it
# (berth.spawner.errors.is_unreachable) as "the engine is not reachable", like a refused socket,
# and nothing of the request reached the engine, so it may be sent again.
GUARD_ENGINE_DOWN = "berth engine guard: the engine's socket refuses connections"
GUARD_ENGINE_DOWN_STATUS = 503


def refused(path: str, timeout: float = 3.0) -> bool:
    """Whether connecting to the unix socket at ``path`` is refused, or the file is gone."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return True
        except OSError:  # a timeout, a full backlog: a busy engine, not a stale socket
            return False
    return False


@dataclass
class Silence:
    """The socket seen over time (pure: fed what each check found and when).

    ``observe`` says the engine is lost once connections have been refused, with no success in
    between, for at least ``lost_after`` seconds.
    """

    lost_after: float
    refused_since: float | None = None

    def observe(self, was_refused: bool, now: float) -> bool:
        if not was_refused:
            self.refused_since = None
            return False
        if self.refused_since is None:
            self.refused_since = now
        return now - self.refused_since >= self.lost_after

    def refused_for(self, now: float) -> float:
        return 0.0 if self.refused_since is None else now - self.refused_since


class EngineLost(Exception):
    """The socket has refused every connection for too long: exit, to be restarted."""


def lost_message(who: str, seconds: float) -> str:
    """What a socket holder logs as it exits (the same words for all of them)."""
    return (
        f"{who}: the engine's socket has refused connections for {seconds:.0f}s (dockerd "
        f"restarted?): exiting ({EXIT_ENGINE_LOST}), to be started again with its new socket"
    )
