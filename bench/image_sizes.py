"""Image sizes against their budgets, and base-notebook's start-up time, memory and imports.

    python bench/image_sizes.py [--runs 5] [--image berth/base-notebook:latest] [--image OTHER]
                                [--profile] [--top 15] [--prefix berth] [--sizes-only]
                                [--singleuser]

Prints each stack image's uncompressed size against its budget (and docker-stacks' figure for
the same image where known); then, unless --sizes-only, for every --image (several give a
before/after comparison measured in the same run, interleaved so that the machine's load hits
both alike): the time from `docker run` to the first 200 from /api/status (on 127.0.0.1), the
CPU time the server process had used by then (a loaded machine inflates it far less than the
wall time), the container's memory (cgroup usage less inactive file cache, what `docker stats`
shows) and the server process's RSS 5 s after that answer. --profile adds one start with
PYTHONPROFILEIMPORTTIME=1 per image and prints the modules whose import cost most (cumulative).
--singleuser starts each container as a spawner does (`start-singleuser.py` with the
JUPYTERHUB_* variables; bench/standin_hub.py answers its hub requests) and waits for the first
200 from the unauthenticated /user/bench/api instead: the server Berth's users get. Bounded:
each run stops and removes its container, and gives up after 120 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import time
from dataclasses import dataclass, field

import docker
import requests
from process_memory import max_rss_mib
from standin_hub import StandInHub, standin_hub

from berth.images.catalog import STACK

# Uncompressed MB. Issue 9 set base-notebook ≤ 350 (measured 348); issue 10 added pandoc there
# (+175 MB, Debian's statically linked pandoc 2.17: nbconvert's LaTeX export needs it), and
# issue 9's second round brought it back under 350 with pandoc kept (its package in the image,
# unpacked on first use; Babel's locales without a JupyterLab language pack dropped:
# docs/images.md), and TeX for PDF export in minimal-notebook (+418 MB, in every image from
# minimal-notebook on). The others: measured on 2026-11-26/27 plus a small margin, before that
# second round (each should now be ~176 MB smaller: measured again for minimal-notebook only).
BUDGET_MB = {
    "foundation": 150,
    "base-notebook": 350,  # measured 337 (513 before: pandoc's 172 MB program unpacked)
    # measured 850 (1036 before base-notebook's second round): base-notebook + git, editors,
    # ps/top, curl, ssh client, tzdata + TeX
    "minimal-notebook": 870,
    "scipy-notebook": 1660,  # measured 1641 (1222 + TeX; 1047 before pandoc)
    # measured 1298 (932 + TeX, less the libraries R and TeX share): + R 4.2, IRkernel, …
    "r-notebook": 1320,
    "datascience-notebook": 1930,  # measured 1903: scipy-notebook + the same R
    # measured 2655: + Java 17 (203 MB), PySpark with its jars and connect extras, pandas 2
    "pyspark-notebook": 2700,
    "all-spark-notebook": 2980,  # measured 2928: pyspark-notebook + the same R, reticulate
    "tensorflow-notebook": 2870,  # measured 2825: + tensorflow-cpu 2.21 without C++ headers
}
# docker-stacks' images for comparison (uncompressed MB, from issue 10). Their r-notebook and
# datascience-notebook are built on their minimal and scipy images, so those are lower bounds.
DOCKER_STACKS_MB = {
    "base-notebook": 1090,
    "scipy-notebook": 4350,
    "r-notebook": 1090,  # at least: their base-notebook alone
    "datascience-notebook": 4350,  # at least: their scipy-notebook alone
    "pyspark-notebook": 5000,
    "all-spark-notebook": 5700,
    "tensorflow-notebook": 5900,
}
DOCKER_STACKS_LOWER_BOUNDS = {"r-notebook", "datascience-notebook"}
IDLE_RSS_BUDGET_MIB = 60
TOKEN = "bench-token-not-secret"
# What a spawner gives jupyterhub-singleuser (the hub's URLs are added: a stand-in's).
SINGLEUSER_PATH = "/user/bench/api"
SINGLEUSER_ENV = {
    "JUPYTERHUB_API_TOKEN": TOKEN,
    "JUPYTERHUB_BASE_URL": "/",
    "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-bench",
    "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/bench/oauth_callback",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/bench/",
    "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/bench/",
    "JUPYTERHUB_USER": "bench",
}
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$", re.M)


@dataclass
class Figures:
    ready: list[float] = field(default_factory=list)
    memory: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def docker_stacks(name: str) -> str:
    if name not in DOCKER_STACKS_MB:
        return ""
    return ("≥ " if name in DOCKER_STACKS_LOWER_BOUNDS else "") + str(DOCKER_STACKS_MB[name])


def sizes(client: docker.DockerClient, extra: list[str], prefix: str = "berth") -> None:
    print(f"{'image':<44} {'size (MB)':>10} {'budget':>8}      {'docker-stacks':>13}")
    rows = [
        (image.tag("latest", prefix), BUDGET_MB.get(image.name), docker_stacks(image.name))
        for image in STACK
    ]
    known = {ref for ref, _, _ in rows}
    rows += [(ref, BUDGET_MB["base-notebook"], "") for ref in extra if ref not in known]
    for ref, budget, theirs in rows:
        try:
            size = client.images.get(ref).attrs["Size"] / 1e6
        except docker.errors.ImageNotFound:
            print(f"{ref:<44} {'not built':>10}")
            continue
        verdict = "" if budget is None else f"{budget:>6}  {'ok' if size <= budget else 'OVER'}"
        print(f"{ref:<44} {size:>10.0f} {verdict}{theirs:>15}")


def container_memory_mib(container) -> float:
    stats = container.stats(stream=False)["memory_stats"]
    return (stats["usage"] - stats.get("stats", {}).get("inactive_file", 0)) / 2**20


def server_rss_mib(container) -> float:
    """VmRSS of the container's Jupyter server (the python process that is not tini/start)."""
    return max_rss_mib(container, "*jupyter*")


def server_cpu_s(container) -> float:
    """CPU seconds (user + system) the container's Jupyter server process has used so far."""
    script = (
        "for s in /proc/[0-9]*/stat; do c=$(tr '\\0' ' ' < ${s%stat}cmdline 2>/dev/null);"
        ' case "$c" in *jupyter*) cut -d" " -f14,15 "$s";; esac; done'
    )
    code, output = container.exec_run(["bash", "-c", script])
    ticks = [int(u) + int(s) for u, s in re.findall(r"^(\d+) (\d+)$", output.decode(), re.M)]
    return max(ticks) / os.sysconf("SC_CLK_TCK") if code == 0 and ticks else float("nan")


def start_once(
    client: docker.DockerClient, image: str, profile: bool = False, hub: StandInHub | None = None
) -> tuple[float, float, float, float, str]:
    """One start: seconds to the first 200, the server's CPU seconds then, idle container memory
    and server RSS (MiB), and the log when profiling. With `hub`: jupyterhub-singleuser, started
    as a spawner starts it."""
    port = free_port()
    environment = {"NOTEBOOK_ARGS": f"--IdentityProvider.token={TOKEN}"}
    path, headers = "/api/status", {"Authorization": f"token {TOKEN}"}
    network = None
    if hub is not None:
        path, headers, network = SINGLEUSER_PATH, {}, hub.network
        environment = {
            **SINGLEUSER_ENV,
            "JUPYTERHUB_API_URL": hub.api_url,
            "JUPYTERHUB_ACTIVITY_URL": f"{hub.api_url}/users/bench/activity",
        }
    if profile:
        environment["PYTHONPROFILEIMPORTTIME"] = "1"
    started = time.perf_counter()
    container = client.containers.run(
        image,
        detach=True,
        ports={"8888/tcp": ("127.0.0.1", port)},
        environment=environment,
        labels={"berth-bench": "image_sizes"},
        network=network,
    )
    try:
        session = requests.Session()
        session.trust_env = False
        deadline = started + 120
        while time.perf_counter() < deadline:
            try:
                answer = session.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=2)
                if answer.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"no 200 from {path} within 120 s")
        ready = time.perf_counter() - started
        cpu = server_cpu_s(container)  # what the start cost the CPU: less load-bound than `ready`
        time.sleep(5)  # let start-up work settle before reading idle memory
        log = container.logs().decode(errors="replace") if profile else ""
        return ready, cpu, container_memory_mib(container), server_rss_mib(container), log
    finally:
        container.remove(force=True)


def print_profile(image: str, log: str, top: int) -> None:
    rows = [(int(m[2]), len(m[3]) // 2, m[4]) for m in IMPORT_LINE.finditer(log)]
    cumulative = {name: us for us, _, name in rows}
    anchor = cumulative.get("jupyter_server.serverapp")
    print(f"\n{image}: import profile of one start (-X importtime; costs inflated by it)")
    if anchor:
        print(f"  jupyter_server.serverapp: {anchor / 1e3:.0f} ms cumulative")
        for name in ("rfc3987_syntax", "jsonschema", "jupyter_events", "lark"):
            if name in cumulative:
                share = cumulative[name] / anchor
                print(f"  {name}: {cumulative[name] / 1e3:.0f} ms ({share:.0%} of serverapp)")
            else:
                print(f"  {name}: not imported")
    print(f"  top {top} top-level imports (cumulative):")
    for us, _, name in sorted((r for r in rows if r[1] == 0), reverse=True)[:top]:
        print(f"    {us / 1e3:8.0f} ms  {name}")


def measure(
    client: docker.DockerClient, images: list[str], runs: int, hub: StandInHub | None
) -> dict[str, Figures]:
    figures = {image: Figures() for image in images}
    for _ in range(max(1, min(runs, 20))):
        for image in images:  # interleaved: both images see the same machine load
            ready, cpu, memory, rss, _ = start_once(client, image, hub=hub)
            figures[image].ready.append(ready)
            figures[image].cpu.append(cpu)
            figures[image].memory.append(memory)
            figures[image].rss.append(rss)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", action="append", help="repeat to compare images")
    parser.add_argument("--profile", action="store_true", help="print an import profile")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--prefix", default="berth", help="the stack's tag namespace")
    parser.add_argument("--sizes-only", action="store_true", help="no start-up measurements")
    parser.add_argument(
        "--singleuser", action="store_true", help="start jupyterhub-singleuser as a spawner does"
    )
    args = parser.parse_args()
    images = args.image or [f"{args.prefix}/base-notebook:latest"]
    client = docker.from_env()
    sizes(client, images, args.prefix)
    if args.sizes_only:
        return
    with contextlib.ExitStack() as stack:
        hub = stack.enter_context(standin_hub(client)) if args.singleuser else None
        figures = measure(client, images, args.runs, hub)
        if args.profile:
            profiles = {image: start_once(client, image, True, hub)[4] for image in images}
    what = SINGLEUSER_PATH + " (jupyterhub-singleuser)" if args.singleuser else "/api/status"
    for image, seen in figures.items():
        print(f"\n{image}: docker run → first 200 from {what}")
        print(
            f"  median {statistics.median(seen.ready):.2f} s  (min {min(seen.ready):.2f},"
            f" max {max(seen.ready):.2f}, runs {len(seen.ready)});"
            f" server CPU by then {statistics.median(seen.cpu):.2f} s"
        )
        rss = statistics.median(seen.rss)
        verdict = "ok" if rss <= IDLE_RSS_BUDGET_MIB else "OVER"
        print(
            f"  idle: container memory {statistics.median(seen.memory):.0f} MiB (docker stats),"
            f" server RSS {rss:.0f} MiB (budget {IDLE_RSS_BUDGET_MIB}: {verdict})"
        )
    if args.profile:
        for image, log in profiles.items():
            print_profile(image, log, args.top)


if __name__ == "__main__":
    main()
