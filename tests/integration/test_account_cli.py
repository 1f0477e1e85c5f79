"""`berth users …` and `berth token`, the command line, against a real JupyterHub
(accounts_lab.py), no engine: the hub container's `docker exec` is done by running the same
module here, so the command line, its checks and its output are the real ones.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import accounts_lab
import bcrypt
import pytest
from accounts_lab import STRONG, LocalHub, local_account, password_in_env, running
from cli_run import run_berth
from docker.models.containers import ExecResult
from hub_marks import NEEDS_PROXY

from berth.deploy import accounts

pytestmark = [
    pytest.mark.integration,
    NEEDS_PROXY,
]

hub, ops = accounts_lab.hub, accounts_lab.ops  # the module's hub and the operations pointed at it


class HubContainer:
    """What the CLI finds as the hub container: `docker exec` runs the same command here."""

    status = "running"

    def exec_run(self, cmd: list[str], environment: dict[str, str]) -> ExecResult:
        assert cmd[:3] == ["python3", "-m", "berth.deploy.accounts"], cmd
        out = io.StringIO()
        with contextlib.redirect_stdout(out), password_in_env(environment.get("BERTH_PASSWORD")):
            status = accounts.main(cmd[3:])
        return ExecResult(status, out.getvalue().encode())


class Engine:
    class containers:
        @staticmethod
        def get(name: str) -> HubContainer:
            assert name == "berth-hub", name
            return HubContainer()


@pytest.fixture
def cli(ops: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`berth ARGS` (stdin optional) against this hub: (status, stdout, stderr)."""
    from berth import engine_client

    monkeypatch.setattr(engine_client, "connect", lambda *a, **k: Engine())
    (tmp_path / "berth.yaml").write_text("auth:\n  type: native\n")

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        env = {"BERTH_CONFIG": str(tmp_path / "berth.yaml"), "COLUMNS": "200"}
        return run_berth(*args, env=env, stdin=stdin)

    return run


def test_cli_add_with_a_weak_piped_password_makes_nothing(cli, ops: LocalHub) -> None:
    status, _, stderr = cli("users", "add", "Petra", "--password", stdin="password\n")
    assert status == 1
    assert stderr.startswith("error: password refused: at least "), stderr
    assert "petra" not in ops.users() and local_account("petra") is None


def test_cli_add_list_admin_token_remove(cli, ops: LocalHub) -> None:
    status, _, stderr = cli("users", "add", "Quinn", "--password", stdin=STRONG + "\n")
    assert (status, stderr) == (0, "added quinn\n")  # the name as the hub keeps it
    assert bcrypt.checkpw(STRONG.encode(), local_account("quinn").password)
    status, _, stderr = cli("users", "add", "rosa", "--admin")
    assert status == 0 and stderr.startswith("added rosa (admin)\none-time password: "), stderr
    status, stdout, _ = cli("users", "list")
    assert status == 0
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in stdout.splitlines()}
    assert rows["quinn"] == ["user", ""] and rows["rosa"] == ["admin", ""], stdout
    assert cli("users", "admin", "quinn", "on")[2] == "quinn is now an admin\n"
    assert ops.api("GET", "/users/quinn").json()["admin"] is True
    status, stdout, _ = cli("token", "quinn", "--note", "for ci")
    assert status == 0 and len(stdout.strip()) >= 32, stdout
    pid = ops.start_server("quinn")
    status, _, stderr = cli("users", "remove", "quinn")
    assert (status, stderr) == (0, "removed quinn; the user's volume is kept\n")
    assert not running(pid), "the server's process still runs"
    assert "quinn" not in ops.users() and local_account("quinn") is None


def test_cli_refusals_are_one_line(cli) -> None:
    assert cli("users", "remove", "nobody-here") == (1, "", "error: no user named 'nobody-here'\n")
    status, _, stderr = cli("users", "admin", "anyone", "maybe")
    assert (status, stderr) == (1, "error: admin takes 'on' or 'off', not 'maybe'\n")
    status, _, stderr = cli("users", "set-password", "anyone", stdin="\n")
    assert (status, stderr) == (1, "error: no password given (nothing was changed)\n")
