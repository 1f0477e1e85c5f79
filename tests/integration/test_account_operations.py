"""`berth users …` and the account operations behind it, fast: a real JupyterHub, no engine.

The deployment tests (test_accounts.py, test_deploy.py) run these through a whole `berth up`;
here one JupyterHub process with Berth's native authenticator and its own SQLite database, on
loopback ports, stands in for the hub container, and the operations run in this process
(berth.deploy.accounts, pointed at that hub's API, token and configuration). The CLI tests run
`berth users …` as the console script does, with the hub container's `docker exec` done by
running the same module here: the command line, its checks and its output are the real ones.
A user's server is a small HTTP server process, so that stopping it can be seen.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from docker.models.containers import ExecResult
from hub_harness import free_port
from hub_marks import NEEDS_PROXY
from typer.testing import CliRunner

from berth.cli import main as berth_main
from berth.config import config_from_data
from berth.config.translate import to_jupyterhub_config
from berth.deploy import accounts, layout

pytestmark = [
    pytest.mark.integration,
    NEEDS_PROXY,
]

STRONG = "a-Better-passw0rd-for-tests"

# A user's server: `python -m http.server` on a free loopback port; its pid is written to
# <dir>/<user>.pid (<dir>/<user>_<server>.pid for a named server) so that a test can see
# whether it still runs.
HUB_CONFIG = """
import os, socket, subprocess, sys
from jupyterhub.spawner import Spawner

class HttpServerSpawner(Spawner):
    proc = None

    async def start(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd={workdir!r},
        )
        pid_file = self.user.name + ("_" + self.name if self.name else "") + ".pid"
        with open(os.path.join({workdir!r}, pid_file), "w") as f:
            f.write(str(self.proc.pid))
        return ("127.0.0.1", port)

    async def poll(self):
        return None if self.proc is not None and self.proc.poll() is None else 0

    async def stop(self, now=False):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.authenticator_class = "berth-native"
c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.spawner_class = HttpServerSpawner
c.Spawner.http_timeout = 30
c.Spawner.start_timeout = 60
c.JupyterHub.services = [{{"name": "berth-cli", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["berth-cli"]}}]
"""


def authenticator_settings() -> str:
    """The authenticator's settings as `berth up` writes them for a default berth.yaml
    (password rules included): the hub here is configured like a deployment's."""
    translated = to_jupyterhub_config(config_from_data({}))
    return "\n".join(
        f"c.{section}.{key} = {value!r}"
        for section in ("Authenticator", "NativeAuthenticator", "BerthNativeAuthenticator")
        for key, value in translated[section].items()
    )


class LocalHub:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.token = secrets.token_hex(16)
        self.hub_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.hub_port}/hub/api"
        self.config = workdir / "jupyterhub_config.py"
        self.token_file = workdir / "berth_cli_token"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalHub:
        self.config.write_text(
            textwrap.dedent(HUB_CONFIG).format(
                workdir=str(self.workdir),
                proxy_port=free_port(),
                proxy_api_port=free_port(),
                hub_port=self.hub_port,
                proxy_token=secrets.token_hex(16),
                token=self.token,
            )
            + authenticator_settings()
            + "\n"
        )
        self.token_file.write_text(self.token + "\n")
        self.token_file.chmod(0o600)
        log = open(self.workdir / "hub.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.config)],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited; log:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.api_url + "/", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"the hub did not come up; log:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # cleanup_servers: its servers stop too
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        text = (self.workdir / "hub.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, self.api_url + path, headers=headers, timeout=30, **kwargs)

    def users(self) -> set[str]:
        return {user["name"] for user in self.api("GET", "/users").json()}

    def start_server(self, name: str, server: str = "") -> int:
        """Start `name`'s server (a named one with `server`) and return the pid of its
        process, once it answers."""
        path = f"/users/{name}/servers/{server}" if server else f"/users/{name}/server"
        started = self.api("POST", path)
        assert started.status_code in (201, 202), started.text
        pid_file = self.workdir / (f"{name}_{server}.pid" if server else f"{name}.pid")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            servers = self.api("GET", f"/users/{name}").json()["servers"]
            if servers.get(server, {}).get("ready"):
                return int(pid_file.read_text())
            time.sleep(0.2)
        raise AssertionError(f"{name}'s server did not start; log:\n{self.log_tail()}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    local = LocalHub(tmp_path_factory.mktemp("accounts-hub"))
    try:
        yield local.start()
    finally:
        local.stop()


@pytest.fixture
def ops(hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> LocalHub:
    """The account operations, pointed at this hub as they are at theirs in the container."""
    monkeypatch.setattr(accounts, "API", hub.api_url)
    monkeypatch.setattr(layout, "CLI_TOKEN_FILE", str(hub.token_file))
    monkeypatch.setattr(layout, "CONFIG_FILE", str(hub.config))
    monkeypatch.delenv("BERTH_PASSWORD", raising=False)
    return hub


def run_op(op: str, password: str | None = None, **fields: Any) -> tuple[int, dict[str, Any]]:
    """`python3 -m berth.deploy.accounts REQUEST` as the CLI execs it: (status, its answer)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), _environment(password):
        status = accounts.main([json.dumps(accounts.request(op, **fields))])
    return status, json.loads(out.getvalue().strip().splitlines()[-1])


@contextlib.contextmanager
def _environment(password: str | None) -> Iterator[None]:
    saved = os.environ.get("BERTH_PASSWORD")
    if password is not None:
        os.environ["BERTH_PASSWORD"] = password
    try:
        yield
    finally:
        os.environ.pop("BERTH_PASSWORD", None)
        if saved is not None:
            os.environ["BERTH_PASSWORD"] = saved


def local_account(name: str) -> Any:
    """NativeAuthenticator's row for `name` (None when there is none), read afresh."""
    return accounts.LocalPasswords().find(name)


def made_by_operator(name: str) -> bool:
    return accounts.LocalPasswords().made_by_operator(name)


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of the hub that exited but was not reaped yet counts as stopped.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return False


# --- the account operations ------------------------------------------------------------------


def test_a_weak_password_leaves_no_half_made_user(ops: LocalHub) -> None:
    status, answer = run_op("add", name="weakling", admin=False, native=True, password="password")
    assert status == 1
    assert answer["error"].startswith("password refused: at least "), answer
    assert "weakling" not in ops.users()  # no hub user
    assert local_account("weakling") is None  # no local account
    assert not made_by_operator("weakling")
    # The same name with a good password is then made whole.
    status, answer = run_op("add", name="weakling", admin=False, native=True, password=STRONG)
    assert (status, answer) == (0, {"name": "weakling", "admin": False, "created": True})
    assert "weakling" in ops.users()
    info = local_account("weakling")
    assert info.is_authorized and bcrypt.checkpw(STRONG.encode(), info.password)
    assert made_by_operator("weakling")


def test_add_without_a_password_generates_one_shown_once(ops: LocalHub) -> None:
    status, answer = run_op("add", name="gen", admin=True, native=True)
    assert status == 0, answer
    password = answer.pop("password")
    assert answer == {"name": "gen", "admin": True, "created": True}
    assert len(password) >= 16
    assert bcrypt.checkpw(password.encode(), local_account("gen").password)
    assert ops.api("GET", "/users/gen").json()["admin"] is True
    assert run_op("add", name="gen", admin=False, native=True) == (
        1,
        {"error": "user 'gen' already exists"},
    )


def test_set_password_refuses_a_weak_one_and_keeps_the_old(ops: LocalHub) -> None:
    assert run_op("add", name="carla", admin=False, native=True, password=STRONG)[0] == 0
    status, answer = run_op("set-password", name="carla", password="123")
    assert status == 1 and answer["error"].startswith("password refused"), answer
    assert bcrypt.checkpw(STRONG.encode(), local_account("carla").password)
    newer = STRONG + "-2"
    assert run_op("set-password", name="carla", password=newer) == (0, {"name": "carla"})
    assert bcrypt.checkpw(newer.encode(), local_account("carla").password)
    assert run_op("set-password", name="nobody", password=newer) == (
        1,
        {"error": "no user named 'nobody'"},
    )


def test_remove_stops_the_running_servers_and_forgets_the_account(ops: LocalHub) -> None:
    """Berth stops every server itself: JupyterHub's own user deletion stops only the default
    server and refuses (a 500, the named server left running) while a named one runs, so this
    fails if `accounts.remove` leaves the stopping to JupyterHub."""
    assert run_op("add", name="leaver", admin=False, native=True, password=STRONG)[0] == 0
    default, named = ops.start_server("leaver"), ops.start_server("leaver", "lab")
    assert running(default) and running(named)
    assert run_op("remove", name="leaver") == (0, {"name": "leaver", "removed": True})
    assert not running(default), "the default server's process still runs"
    assert not running(named), "the named server's process still runs"
    assert "leaver" not in ops.users()
    assert local_account("leaver") is None and not made_by_operator("leaver")
    assert run_op("remove", name="leaver") == (1, {"error": "no user named 'leaver'"})


def test_admin_on_and_off_and_a_token(ops: LocalHub) -> None:
    assert run_op("add", name="-dash", admin=False, native=True, password=STRONG)[0] == 0
    assert run_op("admin", name="-dash", admin=True) == (0, {"name": "-dash", "admin": True})
    assert ops.api("GET", "/users/-dash").json()["admin"] is True
    assert run_op("admin", name="-dash", admin=False) == (0, {"name": "-dash", "admin": False})
    assert ops.api("GET", "/users/-dash").json()["admin"] is False
    status, answer = run_op("token", name="-dash", note="ci")
    assert status == 0 and answer["name"] == "-dash", answer
    mine = requests.get(
        ops.api_url + "/user", headers={"Authorization": f"token {answer['token']}"}, timeout=30
    )
    assert mine.json()["name"] == "-dash"
    assert run_op("token", name="ghost") == (1, {"error": "no user named 'ghost'"})


# --- `berth users …` and `berth token`, the command line -------------------------------------


class HubContainer:
    """What the CLI finds as the hub container: `docker exec` runs the same command here."""

    status = "running"

    def exec_run(self, cmd: list[str], environment: dict[str, str]) -> ExecResult:
        assert cmd[:3] == ["python3", "-m", "berth.deploy.accounts"], cmd
        out = io.StringIO()
        with contextlib.redirect_stdout(out), _environment(environment.get("BERTH_PASSWORD")):
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
        with CliRunner().isolation(input=stdin, env=env) as (stdout, stderr, _):
            saved, sys.argv = sys.argv, ["berth", *args]
            try:
                berth_main()
                status = 0
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            finally:
                sys.argv = saved
                sys.stdout.flush()  # the runner's text streams buffer
                sys.stderr.flush()
            return status, stdout.getvalue().decode(), stderr.getvalue().decode()

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


# --- ensure-listed (every `berth up`) ---------------------------------------------------------


def test_ensure_listed_again_takes_the_light_path_with_the_same_answer(ops: LocalHub) -> None:
    """The second `berth up` finds the listed accounts made: the answer comes from the REST API
    and two SQL reads (no JupyterHub or NativeAuthenticator import in the hub container), and
    it is the full path's answer for that state: no password, no note, no refusal."""
    status, first = run_op("ensure-listed", admins=["lister-admin"], users=["lister-user"])
    assert status == 0, first
    assert [(e["name"], e["admin"], "password" in e) for e in first["accounts"]] == [
        ("lister-admin", True, True),
        ("lister-user", False, True),
    ]
    settled = {
        "accounts": [
            {"name": "lister-admin", "admin": True},
            {"name": "lister-user", "admin": False},
        ]
    }
    wanted = [("lister-admin", True), ("lister-user", False)]
    assert accounts.listed_already(wanted) == settled
    assert run_op("ensure-listed", admins=["lister-admin"], users=["lister-user"]) == (0, settled)


def test_ensure_listed_light_path_steps_aside_for_a_signed_up_admin_name(ops: LocalHub) -> None:
    """Attack: someone signed up as a name berth.yaml lists as an admin (a users_info row, no
    record of the operator's). The light path must not answer "settled"; the full path refuses
    the admin rights and approves nothing."""
    local = accounts.LocalPasswords()
    local.session.add(local.model(username="squatter", password=b"x", is_authorized=False))
    local.session.commit()
    assert ops.api("POST", "/users/squatter").status_code == 201
    assert accounts.listed_already([("squatter", True)]) is None
    status, answer = run_op("ensure-listed", admins=["squatter"], users=[])
    assert status == 0, answer
    assert "refused" in answer["accounts"][0]
    assert ops.api("GET", "/users/squatter").json()["admin"] is False
    assert local_account("squatter").is_authorized is False


def test_ensure_listed_light_path_steps_aside_for_an_admin_flag_taken_away(ops: LocalHub) -> None:
    """A listed admin whose admin flag was removed gets it back at the next `berth up`, as
    before the light path."""
    status, _ = run_op("ensure-listed", admins=["demoted"], users=[])
    assert status == 0
    assert ops.api("PATCH", "/users/demoted", json={"admin": False}).status_code == 200
    assert accounts.listed_already([("demoted", True)]) is None
    assert run_op("ensure-listed", admins=["demoted"], users=[]) == (
        0,
        {"accounts": [{"name": "demoted", "admin": True}]},
    )
    assert ops.api("GET", "/users/demoted").json()["admin"] is True
