"""A stale engine socket (what a bind mount holds after a dockerd restart) is noticed, and the
socket holders exit to be restarted with the new one: pure timing, and real unix sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth import engine_socket
from berth.deploy import fencedaemon
from berth.deploy.fence import FenceSpec
from berth.engine_socket import EngineLost, Silence
from berth.guard import __main__ as guard_main
from berth.guard import upstream_watch


def stale_socket(path: Path) -> Path:
    """A socket file nothing listens on: what the guard's bind mount holds after dockerd made
    a new socket (the old listener is gone, and no listener ever comes back to that file)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    return path


@contextlib.contextmanager
def live_socket(path: Path) -> Iterator[Path]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        sock.listen(4)
        yield path


def test_lost_only_after_refusals_with_no_answer_in_between_for_the_whole_grace() -> None:
    silence = Silence(lost_after=3.0)
    seen = [
        silence.observe(refused, now)
        for refused, now in [
            (True, 0.0), (True, 2.0), (False, 2.5),  # an answer starts the count again
            (True, 3.0), (True, 5.0), (True, 6.0), (True, 7.0),
        ]
    ]  # fmt: skip
    assert seen == [False, False, False, False, False, True, True]
    assert silence.refused_for(7.0) == 4.0
    assert silence.observe(False, 8.0) is False and silence.refused_for(8.0) == 0.0


def test_a_refused_or_missing_socket_counts_and_a_listening_one_does_not(tmp_path: Path) -> None:
    assert engine_socket.refused(str(stale_socket(tmp_path / "stale.sock")))
    assert engine_socket.refused(str(tmp_path / "missing.sock"))
    with live_socket(tmp_path / "live.sock") as live:
        assert not engine_socket.refused(str(live))


async def test_the_guards_watch_raises_once_the_socket_stayed_refused(tmp_path: Path) -> None:
    times = iter([0.0, 1.0, 2.0, 3.0, 4.0])
    with pytest.raises(EngineLost, match=r"berth-engine-guard: .* refused connections for 3s"):
        await upstream_watch.watch(
            str(stale_socket(tmp_path / "engine.sock")), check_seconds=0, clock=lambda: next(times)
        )
    assert next(times) == 4.0  # it raised at the fourth check (3 s after the first refusal)


async def test_the_guards_watch_keeps_going_while_the_engine_answers(tmp_path: Path) -> None:
    with live_socket(tmp_path / "engine.sock") as live:
        watching = asyncio.ensure_future(upstream_watch.watch(str(live), check_seconds=0))
        await asyncio.sleep(0.3)
        assert not watching.done()
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


def test_the_guard_exits_75_and_removes_its_socket_when_its_engine_socket_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On main the guard served its stale socket for ever: the hub could not start, poll or
    stop a server until someone restarted the guard by hand."""
    stale = stale_socket(tmp_path / "docker.sock")

    async def quick_watch(path: str) -> None:
        await upstream_watch.watch(path, check_seconds=0.01, lost_after=0.05)

    monkeypatch.setattr(guard_main, "watch", quick_watch)
    served = tmp_path / "guard.sock"
    argv = ["--socket", str(served), "--upstream", f"unix://{stale}", "--prefix", "berth"]
    assert guard_main.main(argv) == engine_socket.EXIT_ENGINE_LOST == 75
    assert not served.exists()  # the hub sees "no socket" until the new guard serves one


def test_the_fence_exits_75_when_its_engine_socket_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On main berth-fence logged an error every second for ever, and fenced no new server."""
    stale = stale_socket(tmp_path / "docker.sock")
    monkeypatch.setattr(fencedaemon, "DOCKER_SOCKET", str(stale))
    monkeypatch.setattr(engine_socket, "LOST_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(fencedaemon.Fence, "close_self", lambda self: None)  # no iptables here
    monkeypatch.setattr(fencedaemon, "watch_starts", lambda *args: None)
    # (the SDK's client asks the engine's version as it is made: it was made before the restart)
    monkeypatch.setattr(fencedaemon.docker, "DockerClient", lambda **kwargs: object())
    spec = FenceSpec(network="ov", hub="berth-hub")
    assert fencedaemon.main(spec) == 75
