"""The `berth` command does not import JupyterHub (it runs in the hub container, not here)."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_imports_no_jupyterhub() -> None:
    """Fails on main before this change: `berth.spawner` imported its spawner classes, so every
    `berth` command (via the pure berth.spawner.limits and .specs) imported JupyterHub,
    SQLAlchemy and alembic first, half of the command's start."""
    script = (
        "import sys, berth.cli, berth.spawner.limits, berth.spawner.specs;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jupyterhub', 'sqlalchemy', "
        "'alembic'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_spawner_classes_are_still_there_by_name() -> None:
    import berth.spawner
    from berth.spawner.container import ContainerSpawner
    from berth.spawner.swarm import SwarmSpawner

    assert berth.spawner.ContainerSpawner is ContainerSpawner
    assert berth.spawner.SwarmSpawner is SwarmSpawner
