"""The container scenarios of test_image_startup.py and the helpers that run and observe them.

A scenario is one `docker run` of the image under test (environment, user, files, mounts);
`Fleet` starts the scenarios a test module needs at once, so they boot in parallel.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel_client import JupyterAPI, insecure_ssl_context

BOOT_TIMEOUT = 120  # seconds for a server to answer when many boot at once on a small machine
EXIT_TIMEOUT = 60
TOKEN_RE = re.compile(r"https?://127\.0\.0\.1:\d+/\S*\?token=([0-9a-f]{32,})")


@dataclass(frozen=True)
class Scenario:
    """How to run one container. server=True: wait for a Jupyter server; else: for its exit."""

    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    command: list[str] | None = None
    server: bool = True
    port: int = 8888
    token: str | None = None  # known token (set through NOTEBOOK_ARGS); else read from the log
    healthcheck: bool = False  # keep the image's HEALTHCHECK (off elsewhere: it costs CPU)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path: (text, mode)
    bind_work: bool = False  # bind-mount a fresh host directory at /home/jovyan/work


def sh(script: str) -> list[str]:
    return ["bash", "-c", script]


def hook_files(directory: str, hooks: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {f"/usr/local/bin/{directory}/{name}": spec for name, spec in hooks.items()}


HOOKS = {
    **hook_files(
        "start-notebook.d",
        {
            "10-first.sh": (
                'echo "hook 10-first.sh as $(id -u)"\nexport HOOK_VALUE=exported\n',
                0o644,
            ),
            "20-second": ('#!/bin/sh\necho "hook 20-second as $(id -u)"\n', 0o755),
            "30-notes.txt": ("echo this must not run\n", 0o644),
        },
    ),
    **hook_files(
        "before-notebook.d",
        {"10-before.sh": ('echo "hook 10-before.sh as $(id -u) sees $HOOK_VALUE"\n', 0o644)},
    ),
}
FAILING_HOOKS = hook_files(
    "start-notebook.d",
    {
        "10-ok.sh": ('echo "hook 10-ok.sh"\n', 0o644),
        "20-broken.sh": ('echo "hook 20-broken.sh"\nfalse\n', 0o644),
        "30-after.sh": ('echo "hook 30-after.sh"\n', 0o644),
    },
)
FAILING_EXECUTABLE_HOOK = hook_files(
    "before-notebook.d", {"50-exits-7": ("#!/bin/sh\nexit 7\n", 0o755)}
)

# (variable, value, run as root?) that must stop the start, naming the variable.
BAD_VALUES = [
    ("NB_UID", "abc", True),
    ("NB_GID", "1x", True),
    ("NB_USER", "Bad User", True),
    ("NB_UMASK", "999", False),
    ("JUPYTER_PORT", "70000", False),
    ("JUPYTER_PORT", "http", False),
    ("NB_UID", "12.5", False),
]
# Checked later, by start-notebook.py (the command), still before any server starts.
BAD_SERVER_VALUES = [
    ("DOCKER_STACKS_JUPYTER_CMD", "lab --debug"),
    ("DOCKER_STACKS_JUPYTER_CMD", "nosuchapp"),
    ("NOTEBOOK_ARGS", "--ServerApp.base_url='/unbalanced"),
]

ROOT_IDS = {"NB_UID": "1234", "NB_GID": "2345"}

SCENARIOS: dict[str, Scenario] = {
    # Servers.
    "default": Scenario(healthcheck=True),
    "https": Scenario(env={"GEN_CERT": "yes"}, healthcheck=True),
    "root-ids-bind": Scenario(user="root", env=ROOT_IDS, bind_work=True),
    "renamed": Scenario(user="root", env={"NB_USER": "berthuser"}, healthcheck=True),
    "arbitrary-uid": Scenario(user="1234", healthcheck=True),
    "port-base-url": Scenario(
        env={
            "JUPYTER_PORT": "9999",
            "NOTEBOOK_ARGS": "--ServerApp.base_url=/berth/"
            " --IdentityProvider.token=berth-test-token",
        },
        port=9999,
        token="berth-test-token",
        healthcheck=True,
    ),
    "explicit-root-server": Scenario(user="root", env={"NB_USER": "root", "NB_UID": "0"}),
    # Through the compatibility wrapper start-notebook.sh.
    "cmd-server": Scenario(
        env={"DOCKER_STACKS_JUPYTER_CMD": "server"}, command=["start-notebook.sh"]
    ),
    "cmd-notebook": Scenario(env={"DOCKER_STACKS_JUPYTER_CMD": "notebook"}),
    "restartable": Scenario(env={"RESTARTABLE": "yes"}),
    # Commands that run to completion.
    "singleuser": Scenario(
        server=False,
        env={
            "JUPYTERHUB_API_TOKEN": "not-a-real-token",
            "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/tester/",
            "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
        },
    ),
    # What DockerSpawner configs written for docker-stacks run.
    "singleuser-sh": Scenario(
        server=False,
        command=["start-singleuser.sh", "--debug"],
        env={
            "JUPYTERHUB_API_TOKEN": "not-a-real-token",
            "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/tester/",
            "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
            "NOTEBOOK_ARGS": "--ServerApp.log_level=DEBUG",
        },
    ),
    "root-drops-privileges": Scenario(
        server=False, user="root", command=sh('id -u; whoami; echo "HOME=$HOME"; pwd')
    ),
    "explicit-root": Scenario(
        server=False,
        user="root",
        env={"NB_USER": "root", "NB_UID": "0"},
        command=sh('id -u; echo "HOME=$HOME"; getent passwd root'),
    ),
    "renamed-cmd": Scenario(
        server=False,
        user="root",
        env={"NB_USER": "berthuser"},
        command=sh('whoami; echo "HOME=$HOME"; pwd; readlink ~; touch ~/probe && echo ok'),
    ),
    "sudo-granted": Scenario(
        server=False, user="root", env={"GRANT_SUDO": "yes"}, command=sh("sudo -n id -u")
    ),
    "sudo-refused": Scenario(server=False, user="root", command=sh("sudo -n true")),
    "sudo-not-root": Scenario(server=False, env={"GRANT_SUDO": "yes"}, command=sh("sudo -n true")),
    "chown-home": Scenario(
        server=False,
        user="root",
        env={**ROOT_IDS, "CHOWN_HOME": "yes", "CHOWN_HOME_OPTS": "-R"},
        command=sh("stat -c %u:%g /home/jovyan /home/jovyan/work"),
    ),
    "no-chown-home": Scenario(
        server=False,
        user="root",
        env=ROOT_IDS,
        command=sh("stat -c %u:%g /home/jovyan; id -u; id -g; touch ~/probe && echo writable"),
    ),
    "chown-extra": Scenario(
        server=False,
        user="root",
        env={
            **ROOT_IDS,
            "NB_GROUP": "berthgroup",
            "CHOWN_EXTRA": "/srv,/mnt",
            "CHOWN_EXTRA_OPTS": "-R",
        },
        command=sh("stat -c %u:%g /srv /mnt; id -gn"),
    ),
    "ignored-switches": Scenario(
        server=False,
        env={
            "NB_UID": "2000",
            "NB_GID": "3000",
            "NB_USER": "alice",
            "NB_GROUP": "team",
            "CHOWN_HOME": "yes",
            "CHOWN_EXTRA": "/srv",
            "GRANT_SUDO": "1",
        },
        command=sh("id -u"),
    ),
    "umask": Scenario(
        server=False,
        user="root",
        env={"NB_UMASK": "002"},
        command=sh("cd /tmp && touch f && mkdir d && stat -c %a f d"),
    ),
    "env-unset": Scenario(
        server=False,
        env={
            "SECRET_A": "a",
            "SECRET_B": "b",
            "KEPT_C": "c",
            "JUPYTER_ENV_VARS_TO_UNSET": "SECRET_A, SECRET_B",
        },
        command=sh("env"),
    ),
    "arbitrary-uid-cmd": Scenario(
        server=False,
        user="1234",
        command=sh('whoami; echo "HOME=$HOME"; touch "$HOME/probe" && echo home-writable'),
    ),
    "hooks": Scenario(
        server=False, user="root", files=HOOKS, command=sh('echo "command sees $HOOK_VALUE"')
    ),
    "hook-fails": Scenario(server=False, files=FAILING_HOOKS, command=sh("echo command ran")),
    "executable-hook-fails": Scenario(
        server=False, files=FAILING_EXECUTABLE_HOOK, command=sh("echo command ran")
    ),
    **{
        f"bad-{name}-{i}": Scenario(server=False, user="root" if root else None, env={name: value})
        for i, (name, value, root) in enumerate(BAD_VALUES)
    },
    **{
        f"bad-server-{name}-{i}": Scenario(server=False, env={name: value})
        for i, (name, value) in enumerate(BAD_SERVER_VALUES)
    },
}

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


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


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
