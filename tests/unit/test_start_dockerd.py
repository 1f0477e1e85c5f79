"""scripts/start-dockerd.sh and the engine's configuration file, with stand-ins for the engine.

`docker`, `pkill`, `pgrep`, `systemctl` and `sudo` are small scripts on PATH that record how
they were called (the real engine is never signalled); BERTH_DAEMON_JSON points the script at a
file in a temporary directory instead of /etc/docker/daemon.json.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "start-dockerd.sh"
STAND_INS = ("docker", "pkill", "pgrep", "systemctl", "sudo")


def run_script(tmp_path: Path, daemon_json: Path) -> tuple[subprocess.CompletedProcess, list]:
    """Run the script with an engine that answers; returns its result and the calls made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    for name in STAND_INS:
        stand_in = bin_dir / name
        # sudo runs its command; the others only say they were called (docker: "it answers").
        body = 'exec "$@"' if name == "sudo" else "exit 0"
        stand_in.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n{body}\n')
        stand_in.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "BERTH_DAEMON_JSON": str(daemon_json),
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    recorded = calls.read_text().splitlines() if calls.exists() else []
    return result, [line for line in recorded if not line.startswith("sudo ")]


def test_a_missing_file_is_written_with_live_restore_and_no_userland_proxy(tmp_path: Path):
    daemon_json = tmp_path / "etc" / "docker" / "daemon.json"
    result, calls = run_script(tmp_path, daemon_json)
    assert result.returncode == 0, result.stderr
    assert json.loads(daemon_json.read_text()) == {"live-restore": True, "userland-proxy": False}
    # The running engine is asked to reload (live-restore applies at once).
    systemd = os.path.isdir("/run/systemd/system")
    reload = "systemctl reload docker" if systemd else "pkill -HUP -x dockerd"
    assert calls == ["docker info", reload, "docker info"], calls


def test_an_operators_file_is_left_alone(tmp_path: Path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{ "log-driver": "journald" }\n')
    result, calls = run_script(tmp_path, daemon_json)
    assert result.returncode == 0, result.stderr
    assert daemon_json.read_text() == '{ "log-driver": "journald" }\n'
    assert calls == ["docker info"], calls  # only "does the engine answer?": no reload
