"""bench/cold_fresh.py's phases, from the timed lines of README's first command."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def phases_of() -> object:
    for folder in ("bench", "tests"):
        if str(ROOT / folder) not in sys.path:
            sys.path.insert(0, str(ROOT / folder))
    return importlib.import_module("cold_fresh").phases_of


def test_each_phase_runs_from_its_line_to_the_next_phase_line() -> None:
    lines = [
        (0.0, "(command started)"),
        (0.5, "[setup] installing docker.io mmdebstrap procps python3-venv"),
        (1.0, "debconf: delaying package configuration"),
        (14.0, "[dockerd] writing /etc/docker/daemon.json"),
        (14.5, "[dockerd] starting dockerd"),
        (15.0, "[setup] creating virtualenv /root/berth/.venv"),
        (17.0, "[setup] installing berth (JupyterHub 6.1.1) into /root/berth/.venv"),
        (22.0, "[setup] ready: 0.1.0 on Docker 20.10.24"),
        (23.0, "pulling debian:bookworm-slim …"),
        (23.5, "bootstrapping Debian bookworm from http://deb.debian.org/debian …"),
        (34.0, "importing the root filesystem as berth/os-base:bookworm …"),
        (35.0, "building foundation"),
        (48.0, "  ✓ foundation built in 13s"),
        (48.0, "building hub"),
        (86.0, "  ✓ hub built in 38s"),
        (88.0, "  ✓ base-notebook built in 40s"),
        (91.0, "URL: https://fresh:8443/"),
        (92.0, "admin: admin  one-time password: x"),
    ]
    assert phases_of()(lines) == [  # type: ignore[operator]
        ("setup.sh: start", 0.5),
        ("setup.sh: apt-get update + install (download, unpack)", 13.5),
        ("setup.sh: dockerd configured and started", 1.0),
        ("setup.sh: python3 -m venv", 2.0),
        ("setup.sh: pip installs uv, uv installs Berth", 5.0),
        ("setup.sh: ready → berth up starts building", 1.0),
        ("os-base: registry pull attempt", 0.5),
        ("os-base: mmdebstrap", 10.5),
        ("os-base: import into the engine", 1.0),
        ("build foundation", 13.0),
        ("build hub and base-notebook (side by side)", 40.0),
        ("berth up: the service starts (images built)", 3.0),
        ("berth up: its last lines (accounts)", 1.0),
        ("  (foundation's own build: 13s)", 0.0),
        ("  (hub's own build: 38s)", 0.0),
        ("  (base-notebook's own build: 40s)", 0.0),
    ]
