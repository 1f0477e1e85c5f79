"""berth.yaml's `snapshots` section: how many snapshots (`berth snapshot take`) each user keeps."""

from __future__ import annotations

from pydantic import Field

from berth.config.base import Section


class SnapshotsConfig(Section):
    keep: int = Field(
        3,
        ge=0,
        le=1000,
        description="Snapshots kept per user: `berth snapshot take` removes that user's oldest "
        "beyond this many; 0 keeps them all.",
    )
