"""`berth status`'s lines about scheduled backups: berth-backup's state file in words (the last
backup's time and archive, and the last failure with its reason, if it is newer)."""

from __future__ import annotations

import json
import time
from typing import Any

import docker

from berth.deploy import layout
from berth.deploy.hub import current, read_file


def _when(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def backup_lines(state: dict[str, Any]) -> list[str]:
    """Pure: tested as text."""
    success = state.get("last_success")
    if success:
        lines = [f"backup: last at {_when(success)} ({state.get('last_archive', '?')})"]
    else:
        lines = ["backup: none yet"]
    failure = state.get("last_failure")
    if state.get("last_error") and (not success or (failure or 0) > success):
        lines.append(
            f"  last failure ({state.get('failures', 1)} in a row, {_when(failure)}): "
            f"{state['last_error']}"
        )
    return lines


def backup_status(client: docker.DockerClient) -> list[str]:
    container = current(client, layout.BACKUP_CONTAINER)
    if container is None:
        return []
    text = read_file(container, layout.BACKUP_STATE_FILE)
    if not text:
        return ["backup: none yet (berth-backup has not finished one)"]
    try:
        state = json.loads(text)
        return backup_lines(state if isinstance(state, dict) else {})
    except ValueError:
        return ["backup: berth-backup's state file is unreadable"]
