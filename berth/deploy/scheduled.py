"""The scheduled-backup service: JupyterHub starts it in the hub container when berth.yaml's
`backup.enabled` is true (berth.config.translate adds it), and stops it with the hub.

Every `backup.every` it takes the same backup as `berth backup --all` (through the engine, with
the hub container's access to the Docker socket), stages it in the hub container's /tmp, copies
it into the destination (a volume or a host directory, through a helper container) under a
temporary name, renames it there once complete, and deletes all but the newest `keep`. The time
of the last successful backup is kept in the data volume, so a hub restart neither skips nor
repeats one; with no backup yet, the first comes a minute after the hub starts.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import docker

from berth.config.backup import SCHEDULE_ENV, BackupDestination, BackupSchedule
from berth.config.schema import BerthConfig
from berth.deploy import backup, layout, volumeio

FIRST_DELAY = 60.0
RETRY_DELAY = 600.0
LAST_RUN = "backup-last-run"  # in the data directory: the time of the last successful backup


def log(text: str) -> None:
    print(f"berth-backup: {text}", file=sys.stderr, flush=True)


def next_run(last: float | None, every: float, now: float, failed: bool = False) -> float:
    """When the next backup is due (pure: tested as numbers)."""
    if failed:
        return now + min(every, RETRY_DELAY)
    if last is None:
        return now + FIRST_DELAY
    return max(now, last + every)


def run_once(
    client: docker.DockerClient, cfg: BerthConfig, destination: BackupDestination, keep: int
) -> str:
    with tempfile.TemporaryDirectory(prefix="berth-backup-") as staging:
        path = backup.backup(client, cfg, [], True, Path(staging) / "out", say=log)
        removed = volumeio.deliver(client, backup.hub_image(), destination, path, keep)
    for name in removed:
        log(f"deleted the older backup {name}")
    return path.name


def main() -> int:
    settings: BackupSchedule = json.loads(os.environ[SCHEDULE_ENV])
    cfg = BerthConfig.model_validate({key: settings[key] for key in ("hub", "storage", "network")})
    every, keep, destination = (
        float(settings["every"]),
        int(settings["keep"]),
        settings["destination"],
    )
    marker = layout.data_dir() / LAST_RUN
    failed = False
    while True:
        last = marker.stat().st_mtime if marker.exists() else None
        due = next_run(last, every, time.time(), failed)
        while time.time() < due:
            time.sleep(min(60.0, max(0.0, due - time.time())))
        try:
            client = docker.from_env(timeout=300)
            try:
                name = run_once(client, cfg, destination, keep)
            finally:
                client.close()
        except Exception as exc:  # a failed backup must not end the schedule
            log(f"backup failed: {exc}")
            failed = True
            continue
        failed = False
        marker.touch()
        log(f"wrote {name} to {json.dumps(destination)}")


if __name__ == "__main__":
    sys.exit(main())
