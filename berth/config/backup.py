"""The `backup:` section of berth.yaml: scheduled backups taken by the hub's side."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import ClassVar, TypedDict

from pydantic import Field, field_validator

from berth.config.base import Section
from berth.config.fields import DockerName

SCHEDULE_ENV = "BERTH_BACKUP_SCHEDULE"  # the service's settings, as JSON
_INTERVAL = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class BackupDestination(TypedDict, total=False):
    """Where scheduled archives go: exactly one of a host directory or a Docker volume."""

    directory: str
    volume: str


class BackupSchedule(TypedDict):
    """The scheduled-backup service's settings (JSON in SCHEDULE_ENV; berth.deploy.scheduled).

    ``hub``, ``storage`` and ``network`` are the berth.yaml sections the backup itself needs.
    """

    every: int  # seconds
    keep: int
    destination: BackupDestination
    hub: dict[str, str]
    storage: dict[str, str]
    network: str


def interval_seconds(value: str) -> int:
    """``"30m"`` -> 1800, ``"6h"`` -> 21600, ``"1d"`` -> 86400."""
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
        description="Take backups on a schedule: a hub service runs `berth backup --all` and "
        "keeps the newest `keep` archives.",
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
        if interval_seconds(value) < 300:
            raise ValueError("must be at least 5m")
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
