"""Running the container scenarios of the image-startup tests (image_scenarios.py) and
observing them: `Fleet` starts the scenarios a test module needs at once, so they boot in
parallel; `Running` is one of them, with helpers to look at it.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from image_scenarios import SCENARIOS, Scenario
from kernel_client import JupyterAPI, insecure_ssl_context
from polling import wait_until

BOOT_TIMEOUT = 120  # seconds for a server to answer when many boot at once on a small machine
EXIT_TIMEOUT = 120  # the same: a command's start runs beside every server the module boots
TOKEN_RE = re.compile(r"https?://127\.0\.0\.1:\d+/\S*\?token=([0-9a-f]{32,})")


# Lists the processes of a container: run with the image's Debian python, isolated from the venv.
PS_SCRIPT = """
import json, os, pwd
procs = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\\0")[:-1]
        ids = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
    except OSError:
        continue
    uid, gid = int(ids["Uid"].split()[0]), int(ids["Gid"].split()[0])
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = None
    procs.append({"pid": int(pid), "argv": argv, "uid": uid, "gid": gid, "user": user})
print(json.dumps(procs))
"""


class Running:
    """A started scenario: its container plus helpers to look at it."""

    def __init__(self, name: str, scenario: Scenario, container: Any, work_dir: Path | None):
        self.name = name
        self.scenario = scenario
        self.container = container
        self.work_dir = work_dir
        self.token: str | None = scenario.token
        self.base_url = ""

    def logs(self) -> str:
        return self.container.logs(stdout=True, stderr=True).decode(errors="replace")

    def stdout(self) -> str:
        return self.container.logs(stdout=True, stderr=False).decode(errors="replace")

    def exec(self, command: list[str], user: str = "root") -> tuple[int, str]:
        code, output = self.container.exec_run(command, user=user)
        return code, output.decode(errors="replace")

    def processes(self) -> list[dict[str, Any]]:
        code, output = self.exec(["/usr/bin/python3", "-I", "-c", PS_SCRIPT])
        assert code == 0, output
        return json.loads(output)

    def process(self, program: str) -> dict[str, Any]:
        """The process whose program (argv[0] or a script run by python) is named program."""
        matches = [
            p
            for p in self.processes()
            if any(os.path.basename(arg) == program for arg in p["argv"][:2])
        ]
        assert matches, f"no {program} process in {self.name}: {self.processes()}"
        return matches[0]

    def host_port(self, port: int | None = None) -> int:
        self.container.reload()
        bindings = self.container.attrs["NetworkSettings"]["Ports"][
            f"{port or self.scenario.port}/tcp"
        ]
        return int(bindings[0]["HostPort"])

    def api(self, token: str | None = None) -> JupyterAPI:
        return JupyterAPI(self.base_url, token, timeout=10)

    def health(self) -> str:
        self.container.reload()
        return self.container.attrs["State"].get("Health", {}).get("Status", "none")


def http_get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects or proxies; HTTP errors are returned, not raised."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"token {token}")
    opener = urllib.request.build_opener(
        NoRedirect,
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=insecure_ssl_context()),
    )
    try:
        with opener.open(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def tar_of(files: dict[str, tuple[str | bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, (content, mode) in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Fleet:
    """Starts scenarios all at once; hands them out once they are ready (or have exited)."""

    def __init__(self, run_container: Any, tmp_path_factory: Any) -> None:
        self.run_container = run_container
        self.tmp_path_factory = tmp_path_factory
        self.running: dict[str, Running] = {}
        self.ready: set[str] = set()

    def launch(self, names: list[str]) -> None:
        for name in names:
            if name not in self.running:
                self.running[name] = self._start(name, SCENARIOS[name])

    def _start(self, name: str, scenario: Scenario) -> Running:
        kwargs: dict[str, Any] = {"environment": scenario.env, "name": f"berth-test-{name}-"}
        kwargs["name"] += os.urandom(4).hex()
        if scenario.user is not None:
            kwargs["user"] = scenario.user
        if scenario.command is not None:
            kwargs["command"] = scenario.command
        if scenario.server:
            kwargs["ports"] = {f"{scenario.port}/tcp": ("127.0.0.1", None)}
        if not scenario.healthcheck:
            kwargs["healthcheck"] = {"test": ["NONE"]}
        work_dir = None
        if scenario.bind_work:
            work_dir = self.tmp_path_factory.mktemp(f"{name}-work")
            work_dir.chmod(0o777)  # whatever uid the container's user gets can write it
            kwargs["volumes"] = {str(work_dir): {"bind": "/home/jovyan/work", "mode": "rw"}}
        container = self.run_container(start=False, **kwargs)
        if scenario.files:
            assert container.put_archive("/", tar_of(scenario.files))
        container.start()
        return Running(name, scenario, container, work_dir)

    def server(self, name: str) -> Running:
        """The scenario's server, once /api answers and its token is known."""
        self.launch([name])
        running = self.running[name]
        if name in self.ready:
            return running
        scheme = "https" if running.scenario.env.get("GEN_CERT") else "http"
        base_url = f"{scheme}://127.0.0.1:{running.host_port()}/"
        args = running.scenario.env.get("NOTEBOOK_ARGS", "")
        match = re.search(r"--ServerApp.base_url=(\S+)", args)
        if match:
            base_url += match.group(1).strip("/") + "/"
        running.base_url = base_url

        def answers() -> bool:
            running.container.reload()
            if running.container.status == "exited":
                raise AssertionError(f"{name} exited before serving:\n{running.logs()}")
            try:
                status, _, _ = http_get(base_url + "api")
            except OSError:
                return False
            if status != 200:
                return False
            if running.token is None:
                found = TOKEN_RE.search(running.logs())
                running.token = found.group(1) if found else None
            return running.token is not None

        wait_until(answers, BOOT_TIMEOUT, f"the server of {name} at {base_url}")
        self.ready.add(name)
        return running

    def finished(self, name: str) -> tuple[int, Running]:
        """The scenario's exit status, once its command has ended."""
        self.launch([name])
        running = self.running[name]
        result = running.container.wait(timeout=EXIT_TIMEOUT)
        return result["StatusCode"], running


def server_process(running: Running) -> dict[str, Any]:
    """The scenario's Jupyter server process (`jupyter-lab`, or DOCKER_STACKS_JUPYTER_CMD's)."""
    command = running.scenario.env.get("DOCKER_STACKS_JUPYTER_CMD", "lab")
    return running.process(f"jupyter-{command}")


def published_base(container: Any, port: str = "8888/tcp") -> str | None:
    """``http://127.0.0.1:<host port>`` of the container's published ``port``, once the engine
    reports it (None before)."""
    container.reload()
    bound = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port)
    return f"http://127.0.0.1:{bound[0]['HostPort']}" if bound else None
