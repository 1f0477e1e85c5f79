"""start-notebook.py / start-singleuser.py: the command they build and the settings they refuse.

The scripts live in the image's build context (their names are not importable), so they are
loaded from their paths; nothing is exec'd: os.execv/execvp are replaced.
"""

from __future__ import annotations

import importlib.util
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

STACK = Path(__file__).resolve().parents[2] / "berth" / "images" / "stack"
SCRIPT = STACK / "base-notebook" / "start-notebook.py"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sn() -> ModuleType:
    return load(SCRIPT, "start_notebook_under_test")


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH holding fake jupyter programs."""
    for name in ("jupyter", "jupyter-lab", "jupyter-notebook", "jupyterhub-singleuser"):
        program = tmp_path / name
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    return tmp_path


class Exec(Exception):
    """Raised by the fake exec functions, carrying what would have been executed."""


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch, sn: ModuleType) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake_exec(program: str, argv: list[str]) -> None:
        calls.append(list(argv))
        raise Exec(program)

    monkeypatch.setattr(sn.os, "execvp", fake_exec)
    monkeypatch.setattr(sn.os, "execv", fake_exec)
    return calls


def test_default_command_is_jupyter_lab(sn: ModuleType) -> None:
    assert sn.server_command({}, []) == ["jupyter", "lab"]


def test_notebook_args_come_before_command_line_args(sn: ModuleType) -> None:
    env = {
        "DOCKER_STACKS_JUPYTER_CMD": "notebook",
        "NOTEBOOK_ARGS": "--ServerApp.base_url=/x/ --IdentityProvider.token='a b'",
    }
    assert sn.server_command(env, ["--debug"]) == [
        "jupyter",
        "notebook",
        "--ServerApp.base_url=/x/",
        "--IdentityProvider.token=a b",
        "--debug",
    ]
    assert sn.singleuser_command(env, ["--debug"]) == [
        "jupyterhub-singleuser",
        "--ServerApp.base_url=/x/",
        "--IdentityProvider.token=a b",
        "--debug",
    ]


@pytest.mark.parametrize("value", ["1", "8888", "65535", "08888"])
def test_valid_ports(sn: ModuleType, value: str) -> None:
    assert sn.jupyter_port({"JUPYTER_PORT": value}) == int(value)


@pytest.mark.parametrize("value", ["", "0", "65536", "70000", "http", "88 88", "-1", "8888.0"])
def test_invalid_ports_name_the_variable(sn: ModuleType, value: str) -> None:
    with pytest.raises(sn.StartError, match=r"^JUPYTER_PORT="):
        sn.jupyter_port({"JUPYTER_PORT": value})


def test_port_unset_is_left_to_jupyter(sn: ModuleType) -> None:
    assert sn.jupyter_port({}) is None


@pytest.mark.parametrize("value", ["lab --debug", "", "-lab", "lab;rm"])
def test_bad_subcommand_names_the_variable(sn: ModuleType, value: str) -> None:
    with pytest.raises(sn.StartError, match=r"^DOCKER_STACKS_JUPYTER_CMD="):
        sn.jupyter_subcommand({"DOCKER_STACKS_JUPYTER_CMD": value})


def test_unbalanced_notebook_args_name_the_variable(sn: ModuleType) -> None:
    with pytest.raises(sn.StartError, match=r"^NOTEBOOK_ARGS"):
        sn.notebook_args({"NOTEBOOK_ARGS": "--x='unclosed"})


@pytest.mark.parametrize(
    "value,expected",
    [("yes", True), ("1", True), ("YES", True), ("no", False), ("", False), (None, False)],
)
def test_is_true(sn: ModuleType, value: str | None, expected: bool) -> None:
    assert sn.is_true(value) is expected


def test_main_execs_the_server(sn: ModuleType, bin_dir: Path, execs: list[list[str]]) -> None:
    env = {"PATH": str(bin_dir), "NOTEBOOK_ARGS": "--a=1"}
    with pytest.raises(Exec):
        sn.main(["--b=2"], env)
    assert execs == [["jupyter", "lab", "--a=1", "--b=2"]]


def test_main_runs_our_own_singleuser_script_in_process_under_a_hub(
    sn: ModuleType, bin_dir: Path, execs: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Fails before this change: a second Python was started (start-singleuser.py exec'd)."""
    env = {"PATH": str(bin_dir), "JUPYTERHUB_API_TOKEN": "t"}
    with pytest.raises(Exec):
        sn.main(["--x"], env)
    assert execs == [["jupyterhub-singleuser", "--x"]]  # what start-singleuser.py would exec
    err = capsys.readouterr().err
    assert "JUPYTERHUB_API_TOKEN" in err and "Executing: jupyterhub-singleuser --x" in err


def test_the_own_script_digest_is_the_shipped_file(sn: ModuleType) -> None:
    assert sn.is_own_singleuser_script(SCRIPT.with_name("start-singleuser.py"))


def test_a_replaced_singleuser_script_is_execd(
    tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image that ships its own start-singleuser.py gets it run, as docker-stacks does."""
    (tmp_path / "start-notebook.py").write_bytes(SCRIPT.read_bytes())
    (tmp_path / "start-singleuser.py").write_text("#!/usr/bin/env python3\nprint('mine')\n")
    copy = load(tmp_path / "start-notebook.py", "start_notebook_copy")
    calls: list[list[str]] = []

    def fake_exec(program: str, argv: list[str]) -> None:
        calls.append([str(program), *argv[1:]])
        raise Exec(program)

    monkeypatch.setattr(copy.os, "execv", fake_exec)
    monkeypatch.setattr(copy.os, "execvp", fake_exec)
    with pytest.raises(Exec):
        copy.main(["--x"], {"PATH": str(bin_dir), "JUPYTERHUB_API_TOKEN": "t"})
    assert calls == [[str(tmp_path / "start-singleuser.py"), "--x"]]


def test_main_singleuser(sn: ModuleType, bin_dir: Path, execs: list[list[str]]) -> None:
    env = {"PATH": str(bin_dir), "JUPYTERHUB_API_TOKEN": "t", "NOTEBOOK_ARGS": "--y"}
    with pytest.raises(Exec):
        sn.main([], env, singleuser=True)
    assert execs == [["jupyterhub-singleuser", "--y"]]


@pytest.mark.parametrize(
    "env,variable",
    [
        ({"DOCKER_STACKS_JUPYTER_CMD": "nbclassic"}, "DOCKER_STACKS_JUPYTER_CMD"),  # not installed
        ({"JUPYTER_PORT": "99999"}, "JUPYTER_PORT"),
        ({"NOTEBOOK_ARGS": "'"}, "NOTEBOOK_ARGS"),
    ],
)
def test_main_refuses_bad_settings_in_one_line(
    sn: ModuleType,
    bin_dir: Path,
    execs: list[list[str]],
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    variable: str,
) -> None:
    assert sn.main([], {"PATH": str(bin_dir), **env}) == 1
    assert execs == []
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("FATAL[") and variable in err


def test_singleuser_script_uses_start_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    su = load(STACK / "base-notebook" / "start-singleuser.py", "start_singleuser_under_test")
    module = su._start_notebook()
    assert module.singleuser_command({}, ["--z"]) == ["jupyterhub-singleuser", "--z"]


def test_scripts_are_executable() -> None:
    for name in (
        "start-notebook.py",
        "start-singleuser.py",
        "start-notebook.sh",
        "start-singleuser.sh",
        "docker_healthcheck.py",
    ):
        mode = (STACK / "base-notebook" / name).stat().st_mode
        assert mode & stat.S_IXUSR, name
    for name in ("start.sh", "run-hooks.sh", "fix-permissions"):
        assert (STACK / "foundation" / name).stat().st_mode & stat.S_IXUSR, name


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


class FakeChild:
    def __init__(self, status: int, on_wait: Any = None) -> None:
        self.status, self.on_wait, self.signals = status, on_wait, []

    def wait(self) -> int:
        if self.on_wait:
            self.on_wait()
        return self.status

    def poll(self) -> int | None:
        return None

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)


@pytest.mark.usefixtures("restore_signals")
def test_restartable_restarts_until_told_to_stop(
    sn: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    children = [
        FakeChild(0),
        FakeChild(1),
        FakeChild(-15, on_wait=lambda: signal.raise_signal(signal.SIGTERM)),
    ]
    started: list[list[str]] = []
    sleeps: list[float] = []

    def popen(command: list[str]) -> FakeChild:
        started.append(command)
        return children[len(started) - 1]

    status = sn.run_restartable(["jupyter", "lab"], popen=popen, sleep=sleeps.append)
    # 143, as a shell says it: the container's status after `docker stop` (it was -15, which
    # the process exit made 241; seen on Podman, where the server is more often killed first).
    assert status == 143
    assert started == [["jupyter", "lab"]] * 3
    assert sleeps == [1.0, 1.0]
    assert children[2].signals == [signal.SIGTERM]  # passed on to the server
    assert capsys.readouterr().err.count("starting it again") == 2


@pytest.mark.usefixtures("restore_signals")
def test_restartable_runs_a_real_process(sn: ModuleType) -> None:
    status = sn.run_restartable(
        ["sh", "-c", "exit 3"], popen=subprocess.Popen, sleep=lambda _: None, max_runs=2
    )
    assert status == 3


def test_a_hub_start_loads_only_what_it_needs(bin_dir: Path) -> None:
    """Fails on main before this change: start-notebook.py, which runs before the server at every
    spawn, started Python with the site module and imported pathlib, shutil (with bz2 and lzma),
    subprocess and signal (~8 ms of CPU) for nothing a plain start uses. Run here as start.sh
    runs it (by its shebang), with CPython's own import record on."""
    result = subprocess.run(
        [str(SCRIPT)],
        env={
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "JUPYTERHUB_API_TOKEN": "not-a-secret",
            "PYTHONPROFILEIMPORTTIME": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr  # the fake jupyterhub-singleuser ran
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}  # fmt: skip
    assert "Executing: jupyterhub-singleuser" in result.stderr
    assert "hashlib" in imported  # the record is there: the own-script check reads it
    unneeded = {"site", "pathlib", "shutil", "subprocess", "signal", "bz2", "lzma"}
    assert sorted(imported & unneeded) == []
