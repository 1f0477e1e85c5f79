"""The cold path: an EMPTY Docker engine → Berth's images built → a user's JupyterLab answering.

    python bench/cold.py [--jobs 2 1] [--skip-host] [--before COMMIT] [--log DIR]
    python bench/cold.py --fresh-host [--before COMMIT] [--log DIR]

`--fresh-host` measures the whole of README's first command instead, on a fresh Debian 12
system in a container (bench/cold_fresh.py); what follows is the default mode.

Each run gets its own empty engine: Debian's dockerd in a container of the shared engine (the
Swarm tests' node image, tests/swarm_cluster.py: `berth-swarm-node:test`), with a fresh
/var/lib/docker volume, reached over TCP on a bridge network of its own; everything is named
`berth-cold-<run>-…` and removed at the end. Phases printed:

- host: what `scripts/setup.sh` does on a fresh machine besides installing Debian packages:
  `python3 -m venv` and the install of this checkout (with its dependencies, from the package
  index) in a temporary directory: with pip for the `--before` tree (as setup.sh did), with uv
  (pip installs uv, uv installs Berth) for this checkout. Measured before each run. The apt part
  (docker.io, mmdebstrap) is measured as the download of those packages only (this machine has
  them installed, so unpacking them is not measured).
- os-base: the registry pull attempt, the Debian bootstrap with mmdebstrap (host), its import
  into the empty engine;
- foundation, then hub and base-notebook (side by side with --jobs 2, one after the other with
  --jobs 1), each image's own time, each Dockerfile step of a second or more, and the build's
  wall time (`--log DIR`: every line of each build, the tools' own output too, with its time);
- `berth up` (the images now present), then a scripted login (HTTPS, through the node's
  published port on the bench's bridge) until the user's JupyterLab page answers: the spawn of
  the user's server included.

Builds need BERTH_CA_BUNDLE behind a TLS-inspecting proxy (as `berth images build`). Bounded:
every wait gives up after a few minutes. Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import requests
import urllib3
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cold_fresh import fresh_cold_path  # noqa: E402
from nested_engine import host_nameservers  # noqa: E402
from swarm_cluster import (  # noqa: E402
    ENGINE_PORT,
    NODE_IMAGE,
    NODE_RUN_OPTIONS,
    ensure_node_image,
)

Phases = list[tuple[str, float]]


def host_setup(installer: str) -> Phases:
    """The host part of the cold path, with ``installer`` "pip" (setup.sh before uv) or "uv"
    (setup.sh now: pip installs uv into the fresh virtualenv, uv installs Berth)."""
    phases: Phases = []
    with tempfile.TemporaryDirectory(prefix="berth-cold-host-") as tmp:
        started = time.perf_counter()
        subprocess.run(
            ["apt-get", "download", "-q", "docker.io", "containerd", "runc", "mmdebstrap"],
            cwd=tmp, check=True, capture_output=True,
        )  # fmt: skip
        phases.append(("host: apt download of docker.io, containerd, runc, mmdebstrap",
                       time.perf_counter() - started))  # fmt: skip
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", f"{tmp}/venv"], check=True)
        phases.append(("host: python -m venv", time.perf_counter() - started))
        pip = [f"{tmp}/venv/bin/pip", "install", "-q", "--disable-pip-version-check"]
        started = time.perf_counter()
        if installer == "pip":
            subprocess.run([*pip, str(ROOT)], check=True)
            phases.append(("host: pip install berth (and dependencies)",
                           time.perf_counter() - started))  # fmt: skip
            return phases
        subprocess.run([*pip, "uv"], check=True)
        phases.append(("host: pip install uv", time.perf_counter() - started))
        started = time.perf_counter()
        subprocess.run(
            [f"{tmp}/venv/bin/uv", "pip", "install", "-q", "--python", f"{tmp}/venv/bin/python",
             str(ROOT)],
            check=True, env=dict(os.environ, UV_NATIVE_TLS="1"),
        )  # fmt: skip
        phases.append(("host: uv pip install berth (and dependencies)",
                       time.perf_counter() - started))  # fmt: skip
    return phases


class EmptyEngine:
    """dockerd in a container of the shared engine, with nothing in it."""

    def __init__(self, host: docker.DockerClient, run: str) -> None:
        self.host, self.name = host, f"berth-cold-{run}"
        self.network = host.networks.create(f"{self.name}-net", driver="bridge")
        # The builds in it resolve names with this machine's resolvers, not Docker's fallback
        # to public ones (8.8.8.8) that a bare 127.0.0.11 in the node's resolv.conf would get.
        # `berth up` gives the engine guard the group of this machine's Docker socket: the
        # inner engine's socket gets the same group id, as if it were this machine's engine.
        socket_gid = str(os.stat("/var/run/docker.sock").st_gid)
        self.container = host.containers.run(
            NODE_IMAGE,
            ["dockerd", "--group", socket_gid, "-H", "unix:///var/run/docker.sock",
             "-H", f"tcp://0.0.0.0:{ENGINE_PORT}",
             *(f"--dns={address}" for address in host_nameservers())],
            name=self.name, detach=True, network=self.network.name,
            volumes={f"{self.name}-data": {"bind": "/var/lib/docker", "mode": "rw"},
                     "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
            **NODE_RUN_OPTIONS,
        )  # fmt: skip
        self.container.reload()
        networks = self.container.attrs["NetworkSettings"]["Networks"]
        self.address = networks[self.network.name]["IPAddress"]
        self.client = self._connect()

    def _connect(self, timeout: float = 90) -> docker.DockerClient:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                client = docker.DockerClient(
                    base_url=f"tcp://{self.address}:{ENGINE_PORT}", timeout=900
                )
                client.ping()
                return client
            time.sleep(0.5)
        raise RuntimeError(f"dockerd in {self.name} did not answer")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.container.remove(force=True, v=True)
        with contextlib.suppress(Exception):
            self.host.volumes.get(f"{self.name}-data").remove(force=True)
        with contextlib.suppress(Exception):
            self.network.remove()


# The build's own lines that start a timed piece: the OS base's (berth.images.osbase says them),
# each image's start and end, each Dockerfile step; with BERTH_BUILD_VERBOSE, the tools' output.
_OS_BASE_MARKS = (("pulling ", "os-base: registry pull attempt"),
                  ("bootstrapping Debian", "os-base: mmdebstrap"),
                  ("importing the root filesystem", "os-base: import into the engine"))  # fmt: skip
_STEP = re.compile(r"^(\S+) (\d+)/(\d+) (.*)$")


def step_phases(lines: list[tuple[float, str]]) -> Phases:
    """Per image, each Dockerfile step that took a second or more (until the image's next step
    or its end), from the timestamped lines of a non-terminal `berth images build`."""
    open_step: dict[str, tuple[float, str]] = {}
    phases: Phases = []
    for now, line in lines:
        text = line.strip()
        image = ""
        if match := _STEP.match(text):
            image, label = match[1], f"{match[2]}/{match[3]} {match[4]}"
        elif match := re.match(r"✓ (\S+) built in", text):
            image, label = match[1], ""
        if not image:
            continue
        if image in open_step:
            began, name = open_step.pop(image)
            if now - began >= 1.0:
                phases.append((f"  {image} {name}"[:66], now - began))
        if label:
            open_step[image] = (now, label)
    return phases


def build(
    engine: EmptyEngine, tree: Path, jobs: int | None, phases: Phases, log: Path | None
) -> None:
    """`berth images build hub base-notebook` of the source tree ``tree`` against the engine,
    each phase timed from the command's own lines (`building X`, `✓ X built in`, the steps);
    with ``log``, every line of the build (the tools' output too) with its time, there."""
    env = dict(os.environ, DOCKER_HOST=f"tcp://{engine.address}:{ENGINE_PORT}",
               PYTHONPATH=str(tree), BERTH_BUILD_VERBOSE="1" if log else "")  # fmt: skip
    command = [sys.executable, "-m", "berth", "images", "build", "hub", "base-notebook"]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    marks: dict[str, float] = {}
    lines: list[tuple[float, str]] = []
    started = time.perf_counter()
    with subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            now = time.perf_counter()
            lines.append((now, line))
            text = line.strip()
            if match := re.match(r"building (\S+)", text):
                marks[f"{match[1]}:start"] = now
            elif match := re.match(r"✓ (\S+) built in", text):
                marks[f"{match[1]}:done"] = now
            for prefix, name in _OS_BASE_MARKS:
                if text.startswith(prefix):
                    marks.setdefault(name, now)
        process.wait(timeout=60)
    if log is not None:
        log.write_text("".join(f"{now - started:8.2f} {line}" for now, line in lines))
    if process.returncode != 0:
        raise RuntimeError("berth images build failed:\n" + "".join(t for _, t in lines[-30:]))
    ended = time.perf_counter()
    base_marks = [(name, marks[name]) for _, name in _OS_BASE_MARKS if name in marks]
    base_marks.append(("", marks["foundation:start"]))
    for (name, began), (_, until) in itertools.pairwise(base_marks):
        phases.append((name, until - began))
    phases.append(
        ("os-base: pull attempt + mmdebstrap + import", marks["foundation:start"] - started)
    )
    for image in ("foundation", "base-notebook", "hub"):
        phases.append((f"build {image}", marks[f"{image}:done"] - marks[f"{image}:start"]))
    phases.extend(step_phases(lines))
    phases.append(("images, wall", ended - started))
    for name, seconds in phases:
        print(f"  {name:<66} {seconds:7.1f} s", flush=True)


def login(url: str, user: str, password: str) -> float:
    """Seconds from the login form to the user's JupyterLab page answering (the spawn
    included), over the bench's own bridge."""
    started = time.perf_counter()
    session = requests.Session()
    session.trust_env = False
    session.verify = False  # the deployment's self-signed certificate
    page = session.get(f"{url}/hub/login", timeout=60)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    form = {"username": user, "password": password, "_xsrf": xsrf[1] if xsrf else ""}
    answer = session.post(f"{url}/hub/login?next=%2Fhub%2Fspawn", data=form, timeout=60)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        answer = session.get(f"{url}/user/{user}/lab", timeout=60)
        if answer.status_code == 200 and "JupyterLab" in answer.text:
            return time.perf_counter() - started
        time.sleep(0.5)
    raise RuntimeError(f"no JupyterLab for {user} in 240 s: {answer.status_code}")


def up_and_login(engine: EmptyEngine, tree: Path, phases: Phases) -> None:
    """`berth up` against the engine (its images built by the phase before), then a scripted
    login of the admin with the one-time password `berth up` printed, until the user's
    JupyterLab page answers (the spawn included)."""
    env = dict(os.environ, DOCKER_HOST=f"tcp://{engine.address}:{ENGINE_PORT}",
               PYTHONPATH=str(tree))  # fmt: skip
    port = 8443
    config = {"listen": {"address": engine.address, "port": port},
              "idle_culler": {"enabled": False}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="berth-cold-up-") as workdir:
        (Path(workdir) / "berth.yaml").write_text(yaml.safe_dump(config))
        started = time.perf_counter()
        up = subprocess.run(
            [sys.executable, "-m", "berth", "up"], cwd=workdir, env=env,
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if up.returncode != 0:
            raise RuntimeError(f"berth up failed:\n{up.stderr[-3000:]}")
        phases.append(("berth up (images present)", time.perf_counter() - started))
        match = re.search(r"admin: (\S+)\s+one-time password: (\S+)", up.stderr)
        if match is None:
            raise RuntimeError(f"no admin password in berth up's output:\n{up.stderr[-2000:]}")
        user, password = match[1], match[2]
        phases.append(("login → the user's JupyterLab answers (spawn included)",
                       login(f"https://{engine.address}:{port}", user, password)))  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "berth", "down"], cwd=workdir, env=env,
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip


def cold_path(
    host: docker.DockerClient, tree: Path, jobs: int | None, phases: Phases, log: Path | None
) -> None:
    engine = EmptyEngine(host, uuid.uuid4().hex[:8])
    try:
        build(engine, tree, jobs, phases, log)
        up_and_login(engine, tree, phases)
    finally:
        engine.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs",
        type=int,
        nargs="*",
        default=[2],
        help="a cold path of this checkout for each (images built side by side)",
    )
    parser.add_argument(
        "--before",
        metavar="COMMIT",
        help="first, the cold path of this commit's tree (git archive), as it was",
    )
    parser.add_argument("--skip-host", action="store_true")
    parser.add_argument(
        "--fresh-host",
        action="store_true",
        help="instead: README's first command on a fresh Debian 12 system in a container "
        "(bench/cold_fresh.py), from this checkout's HEAD (or --before's commit)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        metavar="DIR",
        help="write each run's build, every line with its time (the tools' output too), here",
    )
    args = parser.parse_args()  # fmt: skip
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    host = docker.from_env(timeout=300)
    if args.fresh_host:
        if args.log:
            args.log.mkdir(parents=True, exist_ok=True)
        commit = args.before or "HEAD"
        phases = fresh_cold_path(host, ROOT, commit, args.log / "fresh.log" if args.log else None,
                                 login)  # fmt: skip
        print(f"\ncold path on a fresh Debian 12 system, {commit}:")
        for name, seconds in phases:
            print(f"  {name:<66} {seconds:7.1f} s" if seconds else f"  {name}")
        total = sum(s for name, s in phases if name.startswith(("README", "login")))
        print(f"  {'total: README command + login':<66} {total:7.1f} s", flush=True)
        return
    ensure_node_image(host)
    with tempfile.TemporaryDirectory(prefix="berth-cold-tree-") as before_tree:
        runs: list[tuple[str, Path, int | None, str]] = []
        if args.before:
            archive = subprocess.run(["git", "archive", args.before], cwd=ROOT,
                                     capture_output=True, check=True).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", before_tree], input=archive, check=True)
            runs.append((f"{args.before} (before)", Path(before_tree), None, "pip"))
        runs += [(f"this checkout, --jobs {jobs}", ROOT, jobs, "uv") for jobs in args.jobs]
        if args.log:
            args.log.mkdir(parents=True, exist_ok=True)
        for number, (label, tree, jobs, installer) in enumerate(runs):
            phases = [] if args.skip_host else host_setup(installer)
            log = args.log / f"build-{number}.log" if args.log else None
            cold_path(host, tree, jobs, phases, log)
            print(f"\ncold path, {label}:")
            for name, seconds in phases:
                print(f"  {name:<66} {seconds:7.1f} s")
            counted = ("host", "images, wall", "berth up", "login")
            total = sum(seconds for name, seconds in phases if name.startswith(counted))
            print(f"  {'total (host + images wall + up + login)':<66} {total:7.1f} s", flush=True)


if __name__ == "__main__":
    main()
