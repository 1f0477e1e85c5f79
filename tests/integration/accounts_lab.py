"""A real JupyterHub for the account tests, no engine (test_account_operations.py,
test_account_cli.py): one hub process with Berth's native authenticator, configured as `berth
up` configures it, with its own SQLite database on loopback ports, standing in for the hub
container. The account operations (berth.deploy.accounts) run in the test's process, pointed
at this hub's API, token and configuration. A user's server is a small HTTP server process, so
that stopping it can be seen.
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

import pytest
import requests
from hub_harness import free_port

from berth.config import config_from_data
from berth.config.translate import to_jupyterhub_config
from berth.deploy import accounts, layout

STRONG = "a-Better-passw0rd-for-tests"

# A user's server: `python -m http.server` on a free loopback port; its pid is written to
# <dir>/<user>.pid (<dir>/<user>_<server>.pid for a named server) so that a test can see
# whether it still runs. Its stop outlasts the hub's slow_stop_timeout, as a real server's
# may on a busy machine: the hub answers the stop 202 and goes on stopping.
HUB_CONFIG = """
import asyncio, os, socket, subprocess, sys
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
            await asyncio.sleep(3)
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
c.JupyterHub.tornado_settings = {{"slow_stop_timeout": 1}}
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
    with contextlib.redirect_stdout(out), password_in_env(password):
        status = accounts.main([json.dumps(accounts.request(op, **fields))])
    return status, json.loads(out.getvalue().strip().splitlines()[-1])


@contextlib.contextmanager
def password_in_env(password: str | None) -> Iterator[None]:
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
