"""A real `berth up` deployment for integration and browser tests.

Only one hub container (`berth-hub`) can exist per engine, so every test that deploys holds an
exclusive lock on it (other test runs on the same machine wait). The deployment uses its own
network, data volume, user-volume template and a free loopback port, and is torn down with
`berth down` plus the removal of exactly those volumes.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import requests
import yaml
from loopback_ports import free_port

LOCK = Path("/tmp/berth-deployment-tests.lock")
PREFIX = "berth-test-deploy"
REPO = Path(__file__).resolve().parents[1]
NO_LIVE_RESTORE = (
    "the engine runs without live-restore: scripts/start-dockerd.sh writes it only when "
    '/etc/docker/daemon.json is absent; add "live-restore": true to that file'
)


def restart_dockerd() -> None:
    """Restart the shared engine (scripts/start-dockerd.sh --restart); tests that do hold the
    hub-image lock, as every deployment test does."""
    restart = subprocess.run(
        ["bash", str(REPO / "scripts" / "start-dockerd.sh"), "--restart"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert restart.returncode == 0, restart.stderr


def base_config(port: int) -> dict[str, Any]:
    return {
        "listen": {"address": "127.0.0.1", "port": port},
        "hub": {"data_volume": f"{PREFIX}-data"},
        "network": f"{PREFIX}-net",
        "storage": {"volume_name_template": f"{PREFIX}-user-{{username}}"},
        "idle_culler": {"enabled": False},
    }


@dataclass
class Deployment:
    workdir: Path
    port: int
    config: dict[str, Any]
    admin_password: str = ""  # the one-time password of the last admin `berth up` made
    passwords: dict[str, str] = field(default_factory=dict)  # every one-time password seen
    tokens: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable  # the Python whose Berth runs `berth …` (a wheel's venv, say)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def write_config(self, config: dict[str, Any] | None = None) -> None:
        if config is not None:
            self.config = config
        (self.workdir / "berth.yaml").write_text(yaml.safe_dump(self.config))

    def berth(
        self, *args: str, timeout: float = 900, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.python, "-m", "berth", *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )

    def up(self) -> subprocess.CompletedProcess:
        result = self.berth("up")
        assert result.returncode == 0, result.stderr
        self.read_passwords(result.stderr)
        return result

    def read_passwords(self, output: str) -> None:
        """Lines `admin: NAME  one-time password: PW` or `user: NAME  one-time password: PW`."""
        for line in output.splitlines():
            kind, _, rest = line.partition(": ")
            if kind in ("admin", "user") and "one-time password:" in rest:
                name = rest.split()[0]
                password = rest.split("one-time password:", 1)[1].split()[0]
                self.passwords[name] = password
                if kind == "admin":
                    self.admin_password = password

    @property
    def ca_file(self) -> str:
        """The hub's self-signed certificate, to verify HTTPS against (127.0.0.1 is a SAN)."""
        path = self.workdir / "hub-cert.pem"
        if not path.exists():
            client = docker.from_env()
            hub = client.containers.get("berth-hub")
            result = hub.exec_run(["cat", "/srv/berth/proxy/tls/cert.pem"])
            client.close()
            assert result.exit_code == 0, result.output
            path.write_bytes(result.output)
        return str(path)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.verify = self.ca_file
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override the hub's certificate
        return session

    def token(self, user: str = "admin") -> str:
        if user not in self.tokens:
            result = self.berth("token", user)
            assert result.returncode == 0, result.stderr
            self.tokens[user] = result.stdout.strip()
        return self.tokens[user]

    def api(self, method: str, path: str, user: str = "admin", **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token(user)}"}
        return self.session().request(
            method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs
        )

    def start_server(self, user: str, name: str = "", timeout: float = 180) -> None:
        path = f"/hub/api/users/{user}/servers/{name}" if name else f"/hub/api/users/{user}/server"
        answer = self.api("POST", path)
        assert answer.status_code in (201, 202), answer.text
        self.wait_ready(user, name, timeout)

    def wait_ready(self, user: str, name: str = "", timeout: float = 180) -> None:
        """Until the hub reports the server ready (one started by the API or a browser)."""
        deadline = time.monotonic() + timeout
        model: dict[str, Any] = {}
        while time.monotonic() < deadline:
            model = self.api("GET", f"/hub/api/users/{user}").json()
            server = (model.get("servers") or {}).get(name)
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{user}/{name} did not become ready: {model}")

    def stop_server(self, user: str, name: str = "") -> None:
        path = f"/hub/api/users/{user}/servers/{name}" if name else f"/hub/api/users/{user}/server"
        answer = self.api("DELETE", path)
        assert answer.status_code in (202, 204), answer.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            model = self.api("GET", f"/hub/api/users/{user}").json()
            if name not in (model.get("servers") or {}):
                return
            time.sleep(0.5)
        raise AssertionError(f"{user}/{name} did not stop")


# The deployments up now. A test's failure is not raised inside the fixture that made its
# deployment (pytest finishes a fixture normally), so tests/conftest.py's report hook reads them
# here to attach each one's state to the failure, before the teardown removes what would explain it.
ACTIVE: list[Deployment] = []


@contextmanager
def reported(dep: Deployment) -> Iterator[None]:
    """Makes ``dep`` one whose state a failing test's report shows (failure_reports)."""
    ACTIVE.append(dep)
    try:
        yield
    finally:
        ACTIVE.remove(dep)


def failure_reports() -> list[str]:
    """The state of every deployment up now (tests/deployment_report.py), for a failed test."""
    from deployment_report import report

    texts = []
    for dep in ACTIVE:
        try:
            texts.append(report(dep.config))
        except Exception as exc:  # the report must never hide the failure it is for
            texts.append(f"(no report: {exc!r})")
    return texts


@contextmanager
def exclusive_hub() -> Iterator[None]:
    with LOCK.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def teardown(workdir: Path) -> None:
    # The certificate `Deployment.ca_file` saved is the gone deployment's: the next one makes
    # its own (a browser trusting the old key's hash refused the new one in bench/up.py).
    (workdir / "hub-cert.pem").unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "berth", "down"],
        cwd=workdir,
        capture_output=True,
        timeout=300,
        check=False,
    )
    client = docker.from_env()
    # Containers a test made beside the deployment (e.g. one holding a tmpfs volume mounted).
    for container in client.containers.list(all=True, filters={"name": PREFIX}):
        if container.name.startswith(PREFIX):
            container.remove(force=True)
    for volume in client.volumes.list():
        if volume.name.startswith(PREFIX):
            volume.remove(force=True)
    for network in client.networks.list():
        if network.name.startswith(PREFIX):
            network.remove()
    client.close()


@contextmanager
def deployment(
    workdir: Path,
    extra: dict[str, Any] | None = None,
    prepare: Callable[[dict[str, Any]], None] | None = None,
    python: str = sys.executable,
) -> Iterator[Deployment]:
    """An exclusive, fresh deployment from `base_config` updated with `extra`; `prepare` gets
    the config after the previous deployment is gone and before `berth up` (to pre-create a
    volume, say); `python` runs the `berth` commands (its Berth builds the hub image). Objects
    it makes are named with PREFIX, so that the teardown removes them."""
    os.makedirs(workdir, exist_ok=True)
    with exclusive_hub():
        teardown(workdir)
        port = free_port()
        config = base_config(port)
        config.update(extra or {})
        dep = Deployment(workdir, port, config, python=python)
        dep.write_config()
        try:
            if prepare is not None:
                prepare(config)
            dep.up()
            with reported(dep):
                yield dep
        finally:
            teardown(workdir)
