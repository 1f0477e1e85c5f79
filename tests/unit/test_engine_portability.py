"""What the spawner makes of engine answers that differ between Docker and Podman.

Podman's Docker-compatible API reads a label filter ``key=`` as "has the label" (Docker: "has it
with the empty value"), and on cgroup v1 never sets ``State.OOMKilled``; see docs/podman.md.
"""

from __future__ import annotations

from typing import Any

from berth.spawner import errors
from berth.spawner.engine_api import carries, label_filters

DEFAULT_SERVER = {"berth.user": "ivan", "berth.server": ""}


def test_label_filters_ask_for_every_label() -> None:
    assert label_filters(DEFAULT_SERVER) == {"label": ["berth.user=ivan", "berth.server="]}


def test_an_empty_label_value_matches_only_the_empty_value() -> None:
    # What Podman returns for the filter above: ivan's default server and his named one.
    found = [
        {"berth.user": "ivan", "berth.server": ""},
        {"berth.user": "ivan", "berth.server": "two"},
        {"berth.user": "ivan"},
        None,
    ]
    assert [carries(labels, DEFAULT_SERVER) for labels in found] == [True, False, False, False]


def failure(state: dict[str, Any], mem_limit: int | None = 256 * 1024**2) -> Any:
    record = {"Id": "c0ffee", "State": {"Status": "exited", "Error": "", **state}, "_logs": "log"}
    exc = errors.start_failure(record, mem_limit, "berth-ivan")
    return {"reason": exc.reason, "message": exc.message}


def test_an_engine_reported_oom_kill() -> None:
    assert failure({"OOMKilled": True, "ExitCode": 137}) == {
        "reason": errors.REASON_OOM,
        "message": "Your server ran out of memory (256 MiB) while starting and was stopped. "
        "Ask an administrator for a higher memory limit.",
    }


def test_a_kill_under_a_memory_limit_without_the_oom_flag() -> None:
    assert failure({"OOMKilled": False, "ExitCode": 137}) == {
        "reason": errors.REASON_OOM,
        "message": "Your server was killed while starting (status 137), most likely because it "
        "ran out of memory (256 MiB). Ask an administrator for a higher memory limit.",
    }


def test_a_kill_without_a_memory_limit_is_just_an_exit() -> None:
    assert failure({"ExitCode": 137}, mem_limit=None) == {
        "reason": errors.REASON_EXITED,
        "message": "Your server exited with status 137 while starting. "
        "An administrator can find its log in the hub's log.",
    }


def test_another_exit_status_is_not_called_memory() -> None:
    assert failure({"ExitCode": 1})["reason"] == errors.REASON_EXITED


def test_a_container_removed_meanwhile() -> None:
    exc = errors.start_failure({"State": {}}, 1024**3, "berth-ivan")
    assert "(berth-ivan) was removed while it was starting" in exc.message
