"""A real JupyterHub + configurable-http-proxy on loopback, driven over the REST API.

Used by the spawner integration tests and by ``bench/spawn.py``. Everything it creates on the
engine (a bridge network, containers and volumes of its spawners) carries a per-run prefix
``berth-test-<hex>`` (``$BERTH_TEST_PREFIX-<hex>`` when that is set, to tell the runs of several
people on one engine apart); :meth:`Hub.cleanup` removes exactly those, also after failures.

The hub listens on the gateway address of its own test network (so containers can reach its
API) and CHP on 127.0.0.1; the test client only ever talks to 127.0.0.1. CHP runs as its own
process (as in a deployment), so a hub restart leaves the proxy and its routes alone.

Needs ``configurable-http-proxy`` on PATH (``npm install -g configurable-http-proxy``).

The hub runs on the Python given as ``python`` (else ``$BERTH_HUB_PYTHON``, else this one), so
one test run can put the spawners under another JupyterHub release: tests/hub_venvs.py makes a
virtualenv with Berth and a given JupyterHub (``scripts/test.sh --jupyterhub VERSION``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import docker
import requests
from engine_reports import has_labels
from kernel_run import run_code
from loopback_ports import free_port
from network_gateway import hold_gateway_up


def default_image() -> str:
    """The image under test: BERTH_TEST_IMAGE, else berth/base-notebook:latest."""
    return os.environ.get("BERTH_TEST_IMAGE", "berth/base-notebook:latest")


def image_available(image: str | None = None) -> bool:
    """Whether the image is built. Only "no such image" is a no: an engine that does not answer
    (or any other error) is raised, so it is reported for what it is instead of as a skip."""
    client = docker.from_env()
    try:
        client.images.get(image or default_image())
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()
    return True


def chp_available() -> bool:
    return shutil.which("configurable-http-proxy") is not None


class Hub:
    """One JupyterHub (+ CHP) process pair with a generated config in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        spawner_config: str = "",
        *,
        spawner: str = "berth",
        image: str | None = None,
        python: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.python = python or os.environ.get("BERTH_HUB_PYTHON") or sys.executable
        self.image = image or default_image()
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"{os.environ.get('BERTH_TEST_PREFIX', 'berth-test')}-{self.run_id}"
        self.network_name = f"{self.prefix}-net"
        self.token = secrets.token_hex(16)
        self.proxy_token = secrets.token_hex(16)
        self.proxy_port = free_port()
        self.proxy_api_port = free_port()
        self.hub_port = free_port()
        self.url = f"http://127.0.0.1:{self.proxy_port}"
        self.spawner = spawner
        self.spawner_config = spawner_config
        self.docker = docker.from_env()
        self.hub_proc: subprocess.Popen[bytes] | None = None
        self.chp_proc: subprocess.Popen[bytes] | None = None
        self.gateway = ""
        self.anchor_name = ""  # see _hold_gateway_up
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Hub:
        network = self.docker.networks.create(self.network_name, driver="bridge")
        network.reload()
        self.gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        self._hold_gateway_up()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "jupyterhub_config.py").write_text(self._config())
        self.chp_proc = subprocess.Popen(
            [
                "configurable-http-proxy",
                "--ip=127.0.0.1",
                f"--port={self.proxy_port}",
                "--api-ip=127.0.0.1",
                f"--api-port={self.proxy_api_port}",
                f"--default-target=http://{self.gateway}:{self.hub_port}",
                f"--error-target=http://{self.gateway}:{self.hub_port}/hub/error",
                "--log-level=warn",
            ],
            env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": self.proxy_token},
            stdout=open(self.workdir / "chp.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        self.start_hub()
        return self

    def _hold_gateway_up(self) -> None:
        """The hub listens on the network's gateway address (tests/network_gateway.py). On
        Podman a sleeping container holds it up until cleanup, named outside the run's prefix:
        tests count the prefix's containers. It runs the default image, which the host has: the
        hub's own may be one that a test has yet to push and its spawner to pull
        (test_image_pull.py)."""
        self.anchor_name = (
            hold_gateway_up(
                self.docker,
                self.network_name,
                image=default_image(),
                anchor=f"{self.prefix.rsplit('-', 1)[0]}-anchor-{self.run_id}",
                labels={"berth-test": "hub-harness"},
            )
            or ""
        )

    def start_hub(self) -> None:
        log = open(self.workdir / "hub.log", "ab")  # noqa: SIM115
        self.hub_proc = subprocess.Popen(
            [self.python, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
            cwd=self.workdir,
            env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": self.proxy_token},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_answering(60, self.hub_proc)

    def wait_answering(
        self, timeout: float, process: subprocess.Popen[bytes] | None = None
    ) -> None:
        """Until the hub's API answers through the proxy (bounded); fail early if ``process``
        (the hub's) exits meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"hub exited early; log:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if self.http.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"hub did not come up; log:\n{self.log_tail()}")

    def stop_hub(self) -> None:
        if self.hub_proc and self.hub_proc.poll() is None:
            self.hub_proc.send_signal(signal.SIGTERM)
            try:
                self.hub_proc.wait(30)
            except subprocess.TimeoutExpired:
                self.hub_proc.kill()
                self.hub_proc.wait(5)
        self.hub_proc = None

    def restart_hub(self) -> None:
        self.stop_hub()
        self.start_hub()

    def cleanup(self) -> None:
        """Stop the processes; remove exactly the engine objects this run created."""
        self.stop_hub()
        if self.chp_proc and self.chp_proc.poll() is None:
            self.chp_proc.terminate()
            try:
                self.chp_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.chp_proc.kill()
        for container in self.docker.containers.list(all=True, filters={"name": self.prefix}):
            if container.name.startswith(self.prefix):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    container.remove(force=True)
        if self.anchor_name:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.docker.containers.get(self.anchor_name).remove(force=True)
        for volume in self.docker.volumes.list(filters={"name": self.prefix}):
            if volume.name.startswith(self.prefix):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    volume.remove(force=True)
        for network in self.docker.networks.list(names=[self.network_name]):
            if network.name == self.network_name:
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    network.remove()
        self.http.close()

    def log_tail(self, lines: int = 60) -> str:
        path = self.workdir / "hub.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # What the test's service token may do on the hub.
    API_SCOPES = ("admin:users", "admin:servers", "access:servers", "read:users")

    def _config(self) -> str:
        return (
            self._where_config()
            + self._common_config()
            + textwrap.dedent(self.spawner_config).format(
                prefix=self.prefix, network=self.network_name, image=self.image
            )
        )

    def _where_config(self) -> str:
        """Addresses, files and proxy of this hub: a process on loopback, CHP beside it."""
        return textwrap.dedent(f"""
            c = get_config()  # noqa
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {self.proxy_port}
            c.JupyterHub.hub_ip = {self.gateway!r}
            c.JupyterHub.hub_port = {self.hub_port}
            c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
            c.JupyterHub.cookie_secret_file = "jupyterhub_cookie_secret"
            c.ConfigurableHTTPProxy.should_start = False
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
            c.ConfigurableHTTPProxy.auth_token = {self.proxy_token!r}
            c.Spawner.start_timeout = 120
        """)

    def _common_config(self) -> str:
        """What every test hub shares: dummy logins, named servers, the test's service token,
        the spawner class, quick polls."""
        scopes = list(self.API_SCOPES)
        return textwrap.dedent(f"""
            c.JupyterHub.cleanup_servers = False
            c.JupyterHub.allow_named_servers = True
            c.JupyterHub.authenticator_class = "dummy"
            c.Authenticator.allow_all = True
            c.JupyterHub.last_activity_interval = 3600
            c.JupyterHub.services = [{{"name": "berth-test", "api_token": {self.token!r}}}]
            c.JupyterHub.load_roles = [{{
                "name": "berth-test-admin",
                "scopes": {scopes!r},
                "services": ["berth-test"],
            }}]
            c.JupyterHub.spawner_class = {self.spawner!r}
            c.Spawner.http_timeout = 60
            c.Spawner.poll_interval = 2
            c.Spawner.poll_jitter = 0
        """)

    # -- REST API -----------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.http.request(method, f"{self.url}/hub/api{path}", **kwargs)

    def create_user(self, name: str) -> None:
        r = self.api("POST", f"/users/{requests.utils.quote(name, safe='')}")
        assert r.status_code in {201, 409}, r.text

    def server_path(self, user: str, server: str = "") -> str:
        u = requests.utils.quote(user, safe="")
        return (
            f"/users/{u}/servers/{requests.utils.quote(server, safe='')}"
            if server
            else (f"/users/{u}/server")
        )

    def user_url(self, user: str, server: str = "") -> str:
        u = requests.utils.quote(user, safe="")
        s = f"{requests.utils.quote(server, safe='')}/" if server else ""
        return f"{self.url}/user/{u}/{s}"

    def request_spawn(self, user: str, server: str = "", **options: Any) -> requests.Response:
        return self.api("POST", self.server_path(user, server), json=options or None, timeout=120)

    def wait_ready(self, user: str, server: str = "", timeout: float = 120) -> float:
        """Poll ``/user/<u>/api/status`` through the proxy until it answers 200."""
        deadline = time.monotonic() + timeout
        url = self.user_url(user, server) + "api/status"
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                r = self.http.get(url, timeout=5, allow_redirects=False)
                if r.status_code == 200:
                    return time.monotonic()
            model = self.user_model(user)
            srv = (model.get("servers") or {}).get(server)
            if srv is None and not model.get("pending"):
                # the spawn failed (or the server was stopped): give up early
                raise AssertionError(f"{user}/{server} is not starting; log:\n{self.log_tail()}")
            time.sleep(0.1)
        raise AssertionError(f"{user}/{server} not ready after {timeout}s:\n{self.log_tail()}")

    def spawn(self, user: str, server: str = "", **options: Any) -> None:
        self.create_user(user)
        r = self.request_spawn(user, server, **options)
        assert r.status_code in {201, 202}, r.text
        self.wait_ready(user, server)

    def stop(self, user: str, server: str = "") -> None:
        r = self.api("DELETE", self.server_path(user, server), timeout=60)
        # The hub's answer to a failed stop is a bare 500: its log says why.
        assert r.status_code in {202, 204}, f"{r.text}\n{self.log_tail()}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server not in (self.user_model(user).get("servers") or {}):
                return
            time.sleep(0.2)
        raise AssertionError(f"{user}/{server} did not stop")

    def user_model(self, user: str) -> dict[str, Any]:
        r = self.api("GET", f"/users/{requests.utils.quote(user, safe='')}")
        r.raise_for_status()
        return dict(r.json())

    def made_here(self, kind: Literal["containers", "volumes"], user: str) -> list[str]:
        """The names of the ``kind`` ("containers" or "volumes") labelled for ``user`` that this
        hub's spawner made (its prefix): the engine may hold another run's for the same name."""
        labelled = {"label": f"berth.user={user}"}
        found = (
            self.docker.containers.list(all=True, filters=labelled)
            if kind == "containers"
            else self.docker.volumes.list(filters=labelled)
        )
        return [item.name for item in found if item.name.startswith(self.prefix)]

    def container(self, user: str, server: str = "") -> Any:
        """The container of a user's server, found by the spawner's labels."""
        found = self.docker.containers.list(
            all=True, filters={"label": [f"berth.user={user}", f"berth.server={server}"]}
        )
        wanted = {"berth.user": user, "berth.server": server}
        found = [
            c for c in found if c.name.startswith(self.prefix) and has_labels(c.labels, wanted)
        ]
        assert len(found) == 1, [c.name for c in found]
        return found[0]

    # -- kernels ------------------------------------------------------------------------------
    def execute(self, user: str, code: str, server: str = "", timeout: float = 60) -> str:
        """Run ``code`` in a fresh kernel of the user's server; returns its stdout."""
        base = self.user_url(user, server)
        r = self.http.post(base + "api/kernels", json={"name": "python3"}, timeout=30)
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        try:
            return run_code(base, kernel_id, self.token, code, timeout)
        finally:
            with contextlib.suppress(requests.RequestException):
                self.http.delete(base + f"api/kernels/{kernel_id}", timeout=10)


@contextlib.contextmanager
def running_hub(workdir: Path, spawner_config: str = "", **kwargs: Any) -> Iterator[Hub]:
    hub = Hub(workdir, spawner_config, **kwargs)
    try:
        yield hub.start()
    finally:
        hub.cleanup()
