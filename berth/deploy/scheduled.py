"""berth-backup's loop: scheduled backups in a container of their own (berth/deploy/backup_plan.py
plans it; `berth up` starts it when berth.yaml's `backup.enabled` is true).

Every `backup.every` it takes the same backup as `berth backup --all` (through the engine: the
helpers that read the hub's data volume and the users' volumes), writes it straight into the
destination (a volume or a host directory, mounted at BACKUP_DIR) under a temporary name, renames
it there once complete, and deletes all but the newest `keep`. A state file in the destination
keeps the last success (so a restart neither skips nor repeats a backup) and the last failure
with its reason (which `berth status` shows; every failure is also in `berth logs --service
backup`). With no backup yet, the first comes a minute after the start (sooner with a shorter
`every`).

It holds the host's socket as a bind mount of the file, and dockerd makes a new socket each time
it starts: after a dockerd restart (with live-restore the container keeps running) the mounted
one answers no more. So when its socket has refused connections for 40 seconds it exits, and the
engine's restart policy starts it again with the new socket (berth/engine_socket.py: the engine
guard and berth-fence do the same).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import docker

from berth import engine_socket
from berth.config.backup import SCHEDULE_ENV, BackupSchedule
from berth.config.schema import BerthConfig
from berth.deploy import backup, layout

FIRST_DELAY = 60.0
RETRY_DELAY = 600.0
ENGINE_CHECK_SECONDS = 20.0
# Refused for this long (three checks in a row): exit, to be started with the new socket.
ENGINE_LOST_SECONDS = 2 * ENGINE_CHECK_SECONDS
EXIT_ENGINE_LOST = engine_socket.EXIT_ENGINE_LOST


def log(text: str) -> None:
    print(f"berth-backup: {text}", file=sys.stderr, flush=True)


def next_run(last: float | None, every: float, now: float, failed: bool = False) -> float:
    """When the next backup is due (pure: tested as numbers)."""
    if failed:
        return now + min(every, RETRY_DELAY)
    if last is None:
        return now + min(every, FIRST_DELAY)
    return max(now, last + every)


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Atomically: `berth status` may read it at any moment."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(state, sort_keys=True))
    os.replace(partial, path)


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def after_success(state: dict[str, Any], name: str, now: float) -> dict[str, Any]:
    return {**state, "last_success": now, "last_archive": name, "last_error": None,
            "failures": 0}  # fmt: skip


def after_failure(state: dict[str, Any], error: str, now: float) -> dict[str, Any]:
    return {**state, "last_failure": now, "last_error": error,
            "failures": int(state.get("failures") or 0) + 1}  # fmt: skip


def engine_answers() -> bool:
    """False only when the socket refuses connections (stale); a slow engine still counts."""
    return not engine_socket.refused(layout.HOST_DOCKER_SOCKET)


def wait_until(due: float) -> None:
    """Sleep until `due`, trying the engine's socket every ENGINE_CHECK_SECONDS meanwhile."""
    silence = engine_socket.Silence(ENGINE_LOST_SECONDS)
    while time.time() < due:
        time.sleep(min(ENGINE_CHECK_SECONDS, max(0.0, due - time.time())))
        now = time.time()
        if silence.observe(not engine_answers(), now):
            print(engine_socket.lost_message("berth-backup", silence.refused_for(now)),
                  file=sys.stderr, flush=True)  # fmt: skip
            sys.exit(EXIT_ENGINE_LOST)


def run_once(client: docker.DockerClient, cfg: BerthConfig, directory: Path, keep: int) -> str:
    path = backup.backup(client, cfg, [], True, directory, say=log)
    for old in backup.prune(directory, keep):
        log(f"deleted the older backup {old.name}")
    return path.name


def main() -> int:
    settings: BackupSchedule = json.loads(os.environ[SCHEDULE_ENV])
    cfg = BerthConfig.model_validate({key: settings[key] for key in ("hub", "storage", "network")})
    every, keep = float(settings["every"]), int(settings["keep"])
    directory = Path(layout.BACKUP_DIR)
    state_file = Path(layout.BACKUP_STATE_FILE)
    log(f"every {every:.0f}s, keeping {keep}, into {json.dumps(settings['destination'])}")
    failed = False
    while True:
        state = read_state(state_file)
        last = state.get("last_success")
        due = next_run(last if isinstance(last, (int, float)) else None, every, time.time(), failed)
        wait_until(due)
        try:
            client = docker.from_env(timeout=300)
            try:
                name = run_once(client, cfg, directory, keep)
            finally:
                client.close()
        except Exception as exc:  # a failed backup must not end the schedule
            error = str(exc) or type(exc).__name__
            log(f"backup failed: {error}")
            failed = True
            try:
                write_state(state_file, after_failure(state, error, time.time()))
            except OSError as write_error:
                log(f"cannot record the failure in {state_file}: {write_error}")
            continue
        failed = False
        write_state(state_file, after_success(state, name, time.time()))
        log(f"wrote {name}")


if __name__ == "__main__":
    sys.exit(main())
