"""When a container waited for counts as stopped: Docker's and Podman's inspect records."""

from __future__ import annotations

import pytest

from berth.engine_client import has_stopped


def _attrs(status: str, restarting: bool = False, restarts: int = 0) -> dict:
    return {"State": {"Status": status, "Restarting": restarting}, "RestartCount": restarts}


@pytest.mark.parametrize(
    ("attrs", "stopped"),
    [
        (_attrs("running"), False),
        (_attrs("created"), False),
        (_attrs("exited"), True),  # Docker
        (_attrs("dead"), True),
        (_attrs("restarting", restarting=True), True),  # Docker, its restart policy pending
        (_attrs("stopped"), True),  # Podman, between a crash and its restart
        # Podman restarted it already, between two polls: only the count shows it. On main
        # this read as still starting, and a crash-looping hub as "not ready within 120s".
        (_attrs("running", restarts=3), True),
    ],
)
def test_a_container_has_stopped_when_either_engine_says_so(attrs, stopped):
    assert has_stopped(attrs, restarts_before=0) is stopped


def test_restarts_before_the_wait_do_not_count():
    assert has_stopped(_attrs("running", restarts=2), restarts_before=2) is False
