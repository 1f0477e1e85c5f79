"""berth-backup, as planned: the container that takes scheduled backups (backup.enabled).

It needs the engine itself, not the guard: a backup lists every user volume and starts helpers
that mount them and the hub's data volume (berth/deploy/volumeio.py), which the guard refuses
the hub on purpose. So it holds the raw socket, and is made as small as that allows: no
network at all (nothing can reach it, it reaches nothing but the socket), a read-only root,
no capabilities, no-new-privileges, and only two mounts: the socket and the destination. It runs
as root without capabilities so that it can write a destination the engine created for it
(root's, mode 755) and the host's socket (root's, group docker) and nothing else a root with
CAP_DAC_OVERRIDE could. The hub's data volume is read by the helpers, as `berth backup` does.
"""

from __future__ import annotations

import json

from berth import labels
from berth.config.backup import (
    SCHEDULE_ENV,
    BackupDestination,
    BackupSchedule,
    interval_seconds,
)
from berth.config.schema import BerthConfig
from berth.deploy import layout
from berth.deploy.containerplan import SECURITY, ContainerPlan, HostFacts, finish, healthcheck

BACKUP_TMP = "size=16m,mode=1777"  # Python's and the SDK's small temporary files; not archives


def backup_schedule(cfg: BerthConfig) -> BackupSchedule:
    """What berth-backup needs to know (berth.deploy.scheduled reads it)."""
    backup = cfg.backup
    destination: BackupDestination = (
        {"directory": backup.directory} if backup.directory else {"volume": backup.volume}
    )
    return {
        "every": interval_seconds(backup.every),
        "keep": backup.keep,
        "destination": destination,
        "hub": {
            "data_volume": cfg.hub.data_volume,
            # only SQLite is allowed with backups on (schema), and its URL holds no secret
            "db_url": cfg.hub.db_url.get_secret_value(),
        },
        "storage": {"volume_name_template": cfg.storage.volume_name_template},
        "network": cfg.network,
    }


def backup_volume_labels(cfg: BerthConfig) -> dict[str, dict[str, str]]:
    """The backup volume berth up creates (none for a host directory)."""
    if not cfg.backup.enabled or cfg.backup.directory:
        return {}
    return {cfg.backup.volume: labels.managed(labels.ROLE_BACKUPS)}


def plan_backup(cfg: BerthConfig, facts: HostFacts) -> ContainerPlan | None:
    if not cfg.backup.enabled:
        return None
    source = cfg.backup.directory or cfg.backup.volume
    kwargs = {
        "image": facts.hub_image_id,
        "name": layout.BACKUP_CONTAINER,
        "hostname": layout.BACKUP_CONTAINER,
        "command": ["python3", "-m", "berth.deploy.scheduled"],
        "detach": True,
        "user": "0:0",
        "environment": {
            SCHEDULE_ENV: json.dumps(backup_schedule(cfg), sort_keys=True),
            "DOCKER_HOST": f"unix://{layout.HOST_DOCKER_SOCKET}",
        },
        "network_mode": "none",
        "volumes": {
            facts.engine_socket: {"bind": layout.HOST_DOCKER_SOCKET, "mode": "rw"},
            source: {"bind": layout.BACKUP_DIR, "mode": "rw"},
        },
        "tmpfs": {"/tmp": BACKUP_TMP},
        "read_only": True,
        "healthcheck": healthcheck("backup"),
        **SECURITY,
    }
    return finish("backup", kwargs, {})
