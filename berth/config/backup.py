"""The `backup:` section of berth.yaml: scheduled backups taken by berth-backup, a container
`berth up` runs beside the hub (berth/deploy/backup_plan.py, berth/deploy/scheduled.py)."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from typing import ClassVar, TypedDict

from pydantic import Field, field_validator

from berth.config.base import Section
from berth.config.fields import DockerName

SCHEDULE_ENV = "BERTH_BACKUP_SCHEDULE"  # berth-backup's settings, as JSON
_INTERVAL = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_EVERY = 300  # seconds: a backup reads every user volume; more often is a mistake
# Tests only: lowers the minimum so an integration test sees several backups in a minute.
MIN_EVERY_ENV = "BERTH_TEST_BACKUP_MIN_EVERY"


def min_every() -> int:
    return int(os.environ.get(MIN_EVERY_ENV, MIN_EVERY))


class BackupDestination(TypedDict, total=False):
    """Where scheduled archives go: exactly one of a host directory or a Docker volume."""

    directory: str
    volume: str


class BackupSchedule(TypedDict):
    """berth-backup's settings (JSON in SCHEDULE_ENV; berth.deploy.scheduled reads them).

    ``hub``, ``storage`` and ``network`` are the berth.yaml sections the backup itself needs.
    """

    every: int  # seconds
    keep: int
    destination: BackupDestination
    hub: dict[str, str]
    storage: dict[str, str]
    network: str


def interval_seconds(value: str) -> int:
    """``"30m"`` -> 1800, ``"6h"`` -> 21600, ``"1d"`` -> 86400 (``"20s"``: tests only)."""
    match = _INTERVAL.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not an interval: a whole number and m, h or d (e.g. 6h, 1d)"
        )
    return int(match.group(1)) * _SECONDS[match.group(2)]


class BackupConfig(Section):
    SERVICE_NAME: ClassVar[str] = "berth-backup"

    enabled: bool = Field(
        False,
        description="Take backups on a schedule: the berth-backup container takes the same "
        "backup as `berth backup --all` and keeps the newest `keep` archives.",
    )
    every: str = Field(
        "1d",
        description="Time between two backups: a whole number and m (minutes), h or d, at "
        "least 5m.",
    )
    keep: int = Field(
        7,
        ge=1,
        le=10000,
        description="How many archives to keep; older ones are deleted after each new backup.",
    )
    volume: DockerName = Field(
        "berth-backups",
        description="Docker volume the archives are written to (created when missing), unless "
        "`directory` is set.",
    )
    directory: str | None = Field(
        None,
        description="Absolute host directory for the archives, instead of `volume` (created "
        "when missing).",
    )

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        if interval_seconds(value) < min_every():
            least = "5m" if min_every() == MIN_EVERY else f"{min_every()}s"
            raise ValueError(f"must be at least {least}")
        return value

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = PurePosixPath(value)
        if not path.is_absolute() or ".." in path.parts or path == PurePosixPath("/"):
            raise ValueError(f"{value!r} must be an absolute host directory (not /, no '..')")
        return str(path)
