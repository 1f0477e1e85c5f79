"""run-hooks.sh and fix-permissions, run on the host against temporary directories; shellcheck
on the images' start scripts and the host's scripts.

start.sh itself changes users and /etc: it is tested in containers only
(tests/integration/test_image_startup.py).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "berth" / "images" / "stack"
RUN_HOOKS = STACK / "foundation" / "run-hooks.sh"
LOG = STACK / "foundation" / "_docker_stacks_log.sh"
FIX_PERMISSIONS = STACK / "foundation" / "fix-permissions"
SHELL_SCRIPTS = [
    STACK / "foundation" / "start.sh",
    STACK / "foundation" / "_docker_stacks_log.sh",
    RUN_HOOKS,
    FIX_PERMISSIONS,
    STACK / "base-notebook" / "start-notebook.sh",
    STACK / "base-notebook" / "start-singleuser.sh",
    # The host's: set-up, engine start and the test command (what CI runs).
    REPO / "scripts" / "setup.sh",
    REPO / "scripts" / "start-dockerd.sh",
    REPO / "scripts" / "start-podman.sh",
    REPO / "scripts" / "test.sh",
    REPO / "scripts" / "conformance.sh",
    REPO / ".ci" / "run",
]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def hooks(directory: Path, files: dict[str, tuple[str, int]]) -> Path:
    directory.mkdir()
    for name, (text, mode) in files.items():
        (directory / name).write_text(text)
        (directory / name).chmod(mode)
    return directory


def source_hooks(directory: Path, after: str = "") -> subprocess.CompletedProcess[str]:
    """Like start.sh: errexit on, run-hooks.sh sourced, then more of the caller's script."""
    script = f'set -e\nsource "{RUN_HOOKS}" "{directory}"\n{after}'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)


def test_hooks_run_sorted_sourced_or_executed(tmp_path: Path) -> None:
    directory = hooks(
        tmp_path / "d",
        {
            "b-exec": ("#!/bin/sh\necho b-exec sees $FROM_A\n", 0o755),
            "a.sh": ("echo a.sh\nFROM_A=set\nexport FROM_A\n", 0o644),
            "B.sh": ("echo B.sh\n", 0o644),
            "c.txt": ("echo never\n", 0o644),
            "d.sh": (
                "echo d.sh sees $FROM_A\nfalse  # not the last command: not a failure\ntrue\n",
                0o644,
            ),
        },
    )
    result = source_hooks(directory, 'echo "caller sees $FROM_A"; false; echo unreachable')
    # Byte order (B before a), sourced hooks share the caller's variables, errexit restored.
    assert result.stdout.splitlines() == [
        "B.sh",
        "a.sh",
        "b-exec sees set",
        "d.sh sees set",
        "caller sees set",
    ]
    assert result.returncode == 1
    assert any(
        line.startswith("INFO[") and line.endswith(f"] Ignoring non-executable: {directory}/c.txt")
        for line in result.stderr.splitlines()
    ), result.stderr


def bad_hook_between_good_ones(tmp_path: Path, body: str) -> Path:
    """Sourced hooks: one that prints ok, `body` as 20-bad.sh, then one that prints next."""
    return hooks(
        tmp_path / "d",
        {
            "10-ok.sh": ("echo ok\n", 0o644),
            "20-bad.sh": (body, 0o644),
            "30-next.sh": ("echo next\n", 0o644),
        },
    )


@pytest.mark.parametrize("body", ["return 3\n", "false\n", "(exit 4)\n"])
def test_a_failing_sourced_hook_is_logged_and_the_next_ones_run(tmp_path: Path, body: str) -> None:
    """docker-stacks' rule, which hooks written for its images rely on: log, carry on."""
    directory = bad_hook_between_good_ones(tmp_path, body)
    result = source_hooks(directory, "echo command")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ok", "next", "command"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR[")]
    assert len(errors) == 1 and errors[0].endswith(
        f"] {directory}/20-bad.sh has failed, continuing execution"
    ), result.stderr


@pytest.mark.parametrize(
    "body,status",
    [
        ("set -e\nfalse\necho after\n", 1),
        ("exit 5\n", 5),
        ("exit 0\n", 1),  # a sourced hook must not end the start, even "successfully"
    ],
)
def test_a_sourced_hook_that_ends_the_shell_is_named(
    tmp_path: Path, body: str, status: int
) -> None:
    directory = bad_hook_between_good_ones(tmp_path, body)
    result = source_hooks(directory, "echo command")
    assert result.returncode == status
    assert result.stdout.splitlines() == ["ok"]
    last = result.stderr.splitlines()[-1]
    assert last.startswith("ERROR[") and "20-bad.sh" in last, result.stderr


def test_a_failing_executable_hook_is_logged_and_the_start_goes_on(tmp_path: Path) -> None:
    directory = hooks(tmp_path / "d", {"50-x": ("#!/bin/sh\nexit 9\n", 0o755)})
    result = source_hooks(directory, "echo command")
    assert result.returncode == 0 and result.stdout == "command\n"
    assert f"] {directory}/50-x has failed, continuing execution" in result.stderr


def test_run_hooks_executed_directly_and_bad_arguments(tmp_path: Path) -> None:
    directory = hooks(tmp_path / "d", {"a.sh": ("echo a\n", 0o644)})
    result = subprocess.run([str(RUN_HOOKS), str(directory)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "a\n"
    missing = tmp_path / "nope"
    for args, message in (
        ([str(missing)], f"Directory {missing} doesn't exist or is not a directory"),
        ([str(directory / "a.sh")], f"Directory {directory / 'a.sh'} doesn't exist"),
        ([], "Should pass exactly one directory"),
        ([str(directory), str(directory)], "Should pass exactly one directory"),
    ):
        result = subprocess.run([str(RUN_HOOKS), *args], capture_output=True, text=True)
        assert result.returncode == 1 and result.stdout == "", args
        assert result.stderr.startswith("ERROR[") and message in result.stderr, result.stderr
    # Sourced (as start.sh does, errexit on): the caller stops too.
    sourced = source_hooks(missing, "echo after")
    assert sourced.returncode == 1 and "after" not in sourced.stdout
    script = f'set -e\nsource "{RUN_HOOKS}"\necho after'
    sourced = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert sourced.returncode == 1 and "after" not in sourced.stdout


def log(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`script` after sourcing the log functions, stderr a pipe (no colour)."""
    source = f'source "{LOG}"\n{script}'
    return subprocess.run(
        ["bash", "-c", source],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
    )


def test_log_lines_level_timestamp_and_quiet() -> None:
    result = log('_log "plain"; _log_info i; _log_warn w; _log_error e; _log DEBUG d; echo out')
    assert result.returncode == 0 and result.stdout == "out\n"
    stamp = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] "
    levels = ["INFO", "INFO", "WARNING", "ERROR", "DEBUG"]
    lines = result.stderr.splitlines()
    assert len(lines) == 5, result.stderr
    for line, level, text in zip(lines, levels, ["plain", "i", "w", "e", "d"], strict=True):
        assert re.fullmatch(level + stamp + text, line), line
    everything = "_log_info i; _log DEBUG d; _log_warn w; _log_error e"
    quiet = log(everything, JUPYTER_DOCKER_STACKS_QUIET="1")
    assert [line.split("[")[0] for line in quiet.stderr.splitlines()] == ["WARNING", "ERROR"]


def test_log_fatal_exits_the_shell() -> None:
    result = log('_log_fatal "gone"; echo still-here')
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("FATAL[") and result.stderr.endswith("] gone\n")


def test_caller_exit_trap_is_kept(tmp_path: Path) -> None:
    directory = hooks(tmp_path / "d", {"a.sh": ("true\n", 0o644)})
    script = f'trap \'echo own-trap\' EXIT\nsource "{RUN_HOOKS}" "{directory}"\necho done'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert result.stdout.splitlines() == ["done", "own-trap"]


def test_fix_permissions(tmp_path: Path) -> None:
    gid = os.getgid()
    root = tmp_path / "venv"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "mod.py").write_text("")
    (root / "lib" / "mod.py").chmod(0o600)
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o700)
    outside = tmp_path / "outside"
    outside.write_text("")
    outside.chmod(0o600)
    (root / "link").symlink_to(outside)
    result = subprocess.run(
        [str(FIX_PERMISSIONS), str(root)],
        env={**os.environ, "NB_GID": str(gid)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for directory in (root, root / "lib", root / "bin"):
        mode = directory.stat().st_mode
        assert mode & stat.S_ISGID and stat.S_IMODE(mode) & 0o070 == 0o070, directory
    assert stat.S_IMODE((root / "lib" / "mod.py").stat().st_mode) == 0o660
    assert stat.S_IMODE((root / "bin" / "tool").stat().st_mode) == 0o770
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600  # symlink target untouched
    assert subprocess.run([str(FIX_PERMISSIONS)], capture_output=True).returncode == 2


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck is not installed (scripts/setup.sh --test installs it)",
)
def test_shellcheck_is_clean() -> None:
    result = subprocess.run(
        ["shellcheck", "--external-sources", *map(str, SHELL_SCRIPTS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
