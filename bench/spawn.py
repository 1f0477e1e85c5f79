"""Spawn latency: Berth's ContainerSpawner vs. DockerSpawner 14, same image, same hub settings.

For each spawner, a fresh JupyterHub + configurable-http-proxy on loopback (the integration test
harness), then through the REST API: the time from ``POST /hub/api/users/<u>/server`` to the
first 200 from ``/user/<u>/api/status`` through the proxy, for N sequential spawns (each stopped
before the next) and M concurrent ones (all requested at once). Prints p50/p95 and wall time per
scenario and the ratios Berth / DockerSpawner.

    python bench/spawn.py                       # 10 sequential + 20 concurrent, both spawners
    python bench/spawn.py --sequential 3 --concurrent 4 --only berth
    python bench/spawn.py --sequential 0 --concurrent 50          # a burst: failures counted
    python bench/spawn.py --sequential 0 --concurrent 0 --growth 1,10,50   # cost growth
    python bench/spawn.py --only berth --berth-config 'c.ContainerSpawner.max_concurrent_boots = 3'
    python bench/spawn.py --sequential 0 --concurrent 50 --outside-load 8 --timeout 600

--outside-load N runs N processes burning CPU on this machine during each spawner's burst (the
same load for both; each stops by itself after --outside-load-seconds at the latest), to see
how the spawners fare on a host busy with other work.

--cpu-breakdown prints, per burst, the CPU seconds of the hub, the proxy, dockerd, containerd,
the shims, the servers' containers and the rest of the machine (bench/burst_cpu.py).

--growth keeps N servers running and times a few more spawns at each level, with the hub's CPU
seconds per spawn and its idle CPU share. --logs DIR keeps each hub's log (Berth's spawner logs
one line per start with where the time went).

Needs the image (default berth/base-notebook:latest, or BERTH_TEST_IMAGE / --image), Docker,
``configurable-http-proxy`` on PATH and ``dockerspawner==14.0.0`` (the ``bench`` extra). Only
talks to 127.0.0.1 and to containers on the network it creates; bounded in count and time; every
container, volume and network it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # network_gateway
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import burst_cpu
import requests
from hub_harness import Hub
from outside_load import outside_load
from spawn_report import report, summary


def alike(spawner: str) -> str:
    """The settings both spawners get, in jupyterhub_config.py lines ({image} and {prefix} are
    filled in by the harness)."""
    return (
        f'\nc.{spawner}.image = "{{image}}"\nc.{spawner}.prefix = "{{prefix}}"\n'
        f'c.{spawner}.pull_policy = "ifnotpresent"\nc.{spawner}.remove = True\n'
    )


SPAWNERS: dict[str, tuple[str, str]] = {
    "berth": (
        "berth",
        alike("ContainerSpawner")
        + "c.ContainerSpawner.start_timeout = 600"
        + "  # Berth's default (the harness sets 120 for every spawner)\n",
    ),
    "dockerspawner": ("dockerspawner.DockerSpawner", alike("DockerSpawner")),
}


def wait_status(hub: Hub, user: str, deadline: float, interval: float = 0.05) -> float:
    """Poll the server's status through the proxy; return the time of the first 200.

    ``interval`` grows with the number of spawns in flight, so that the benchmark's own polling
    (which the hub answers while a route is missing) does not eat the CPU it measures."""
    url = hub.user_url(user) + "api/status"
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.token}"
    tries = 0
    try:
        while time.monotonic() < deadline:
            try:
                r = session.get(url, timeout=5, allow_redirects=False)
                if r.status_code == 200:
                    return time.monotonic()
            except requests.RequestException:
                pass
            tries += 1
            if tries % max(1, int(2 / interval)) == 0:  # now and then: did the spawn fail?
                model = hub.user_model(user)
                if "" not in (model.get("servers") or {}) and not model.get("pending"):
                    raise RuntimeError(f"spawn of {user} failed:\n{hub.log_tail(20)}")
            time.sleep(interval)
    finally:
        session.close()
    raise TimeoutError(f"{user} not ready in time")


def one_spawn(hub: Hub, user: str, timeout: float, in_flight: int = 1) -> float:
    start = time.monotonic()
    r = hub.api("POST", f"/users/{user}/server", timeout=timeout)
    if r.status_code not in {201, 202}:
        raise RuntimeError(f"POST for {user}: {r.status_code} {r.text[:300]}")
    interval = min(0.5, 0.05 * in_flight)
    return wait_status(hub, user, start + timeout, interval) - start


def stop_all(hub: Hub, users: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(hub.stop, users))


def hub_cpu(hub: Hub) -> float:
    """CPU seconds (user + system) the hub process has used so far."""
    assert hub.hub_proc is not None
    fields = Path(f"/proc/{hub.hub_proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def grow(hub: Hub, levels: list[int], probes: int, timeout: float) -> list[dict[str, Any]]:
    """Cost growth: at each level, that many servers keep running (started ten at a time, not
    timed) while ``probes`` more are spawned and stopped one after another. Per level: their
    spawn p50, the hub's CPU seconds per probe spawn (start to first 200, and the stop), and
    the hub's CPU share while idle with that many servers (over 10 s)."""
    running: list[str] = []
    rows = []
    try:
        for level in sorted(levels):
            new = [f"run{i}" for i in range(len(running), level)]
            for user in new:
                hub.create_user(user)
            with ThreadPoolExecutor(10) as pool:
                list(pool.map(lambda u: one_spawn(hub, u, timeout, 10), new))
            running += new
            time.sleep(5)  # let the new servers settle
            latencies, cpu_before = [], hub_cpu(hub)
            for i in range(probes):
                user = f"probe{level}x{i}"
                hub.create_user(user)
                latencies.append(one_spawn(hub, user, timeout))
                hub.stop(user)
            per_spawn = (hub_cpu(hub) - cpu_before) / max(1, probes)
            idle_before, idle_start = hub_cpu(hub), time.monotonic()
            time.sleep(10)
            idle = (hub_cpu(hub) - idle_before) / (time.monotonic() - idle_start)
            rows.append(
                {
                    "running": level,
                    "p50": statistics.median(latencies),
                    "hub_cpu_per_spawn": per_spawn,
                    "hub_idle_cpu": idle,
                }
            )
            print(f"# growth {rows[-1]}", flush=True)
    finally:
        try:
            stop_all(hub, running)
        except AssertionError as exc:  # figures taken; cleanup() removes what is left
            print(f"# stopping after the growth scenario: {exc}", flush=True)
    return rows


def keep_logs(hub: Hub, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    for log in ("hub.log", "chp.log", "jupyterhub_config.py"):
        if (hub.workdir / log).exists():
            (where / log).write_bytes((hub.workdir / log).read_bytes())


def run_scenarios(
    kind: str,
    image: str,
    sequential: int,
    concurrent: int,
    timeout: float,
    workdir: Path,
    logs: Path | None = None,
    extra_config: str = "",
    growth: list[int] | None = None,
    growth_probes: int = 3,
    load: tuple[int, float, str] = (0, 0.0, "host"),
    cpu_breakdown: bool = False,
) -> dict[str, Any]:
    spawner_class, config = SPAWNERS[kind]
    config += extra_config.replace("{", "{{").replace("}", "}}")
    hub = Hub(workdir / kind, config, spawner=spawner_class, image=image)
    results: dict[str, Any] = {"spawner": kind}
    try:
        hub.start()
        users = [f"seq{i}" for i in range(sequential)] + [f"con{i}" for i in range(concurrent)]
        for user in users:
            hub.create_user(user)
        # warm-up (not counted): first spawn pays for image metadata and page caches
        hub.create_user("warmup")
        one_spawn(hub, "warmup", timeout)
        hub.stop("warmup")

        seq: list[float] = []
        seq_start = time.monotonic()
        for user in users[:sequential]:
            seq.append(one_spawn(hub, user, timeout))
            hub.stop(user)
        if sequential:
            results["sequential"] = summary(seq, time.monotonic() - seq_start)

        con_users = users[sequential:]
        barrier = threading.Barrier(len(con_users)) if con_users else None

        def spawn_at_once(user: str) -> float | None:
            assert barrier is not None
            barrier.wait()
            try:
                return one_spawn(hub, user, timeout, len(con_users))
            except (RuntimeError, TimeoutError, requests.RequestException) as exc:
                print(f"# {kind}: {user} failed: {str(exc)[:300]}", flush=True)
                return None

        if con_users:
            assert hub.hub_proc is not None and hub.chp_proc is not None
            pids = {"hub": hub.hub_proc.pid, "proxy": hub.chp_proc.pid, "bench": os.getpid()}
            cpu_before = burst_cpu.snapshot(pids) if cpu_breakdown else None
            with outside_load(*load, image), ThreadPoolExecutor(len(con_users)) as pool:
                con_start = time.monotonic()
                outcomes = list(pool.map(spawn_at_once, con_users))
            con_wall = time.monotonic() - con_start
            if cpu_before is not None:
                cpu_after = burst_cpu.snapshot(pids)
                listed = hub.docker.containers.list(filters={"name": hub.prefix})
                ours = [c.id for c in listed if c.id]
                parts = burst_cpu.breakdown(cpu_before, cpu_after, ours)
                results["cpu"] = parts
                names = burst_cpu.by_name(cpu_before, cpu_after)
                print(burst_cpu.format_breakdown(kind, parts, len(con_users), names), flush=True)
            con = [latency for latency in outcomes if latency is not None]
            results["concurrent"] = summary(con, con_wall)
            results["concurrent"]["failures"] = len(outcomes) - len(con)
            try:
                stop_all(hub, con_users)
            except AssertionError as exc:  # figures taken; cleanup() removes what is left
                print(f"# {kind}: stopping after the burst: {exc}", flush=True)
        if growth:
            results["growth"] = grow(hub, growth, growth_probes, timeout)
    except Exception:
        kept = Path(tempfile.mkdtemp(prefix=f"berth-bench-{kind}-failed-"))
        keep_logs(hub, kept)
        print(f"# {kind} failed; its logs are kept in {kept}", flush=True)
        raise
    finally:
        hub.cleanup()
        if logs is not None:
            keep_logs(hub, logs / kind)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument(
        "--image", default=os.environ.get("BERTH_TEST_IMAGE", "berth/base-notebook:latest")
    )
    parser.add_argument("--only", choices=sorted(SPAWNERS), action="append")
    parser.add_argument("--timeout", type=float, default=180.0, help="per spawn, seconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--growth",
        default="",
        metavar="N,N,...",
        help="cost growth: spawn p50 and hub CPU with N servers running, e.g. 1,10,50",
    )
    parser.add_argument("--growth-probes", type=int, default=3, help="timed spawns per level")
    parser.add_argument("--logs", type=Path, help="keep each hub's log in LOGS/<spawner>/")
    parser.add_argument(
        "--berth-config",
        default="",
        metavar="LINES",
        help="more jupyterhub_config.py lines for Berth's hub, e.g. "
        "'c.ContainerSpawner.max_concurrent_boots = 3'",
    )
    parser.add_argument(
        "--outside-load",
        type=int,
        default=0,
        metavar="N",
        help="N processes burning CPU during each burst (0..16)",
    )
    parser.add_argument(
        "--outside-load-seconds",
        type=float,
        default=600.0,
        help="each burner stops by itself after this long at the latest (at most 1200)",
    )
    parser.add_argument(
        "--outside-load-in",
        choices=["host", "containers"],
        default="host",
        help="burners as processes of this host, or as containers of the image (like users' "
        "busy kernels)",
    )
    parser.add_argument(
        "--cpu-breakdown",
        action="store_true",
        help="print the CPU seconds per part of the machine over each burst (bench/burst_cpu.py)",
    )
    args = parser.parse_args(argv)
    if not (0 <= args.outside_load <= 16 and 0 < args.outside_load_seconds <= 1200):
        parser.error("keep --outside-load within 0..16 and --outside-load-seconds within 0..1200")
    if not (0 <= args.sequential <= 50 and 0 <= args.concurrent <= 50):
        parser.error("keep --sequential and --concurrent within 0..50")
    growth = [int(n) for n in args.growth.split(",") if n.strip()]
    if any(not 1 <= n <= 50 for n in growth) or not 1 <= args.growth_probes <= 10:
        parser.error("keep --growth levels within 1..50 and --growth-probes within 1..10")
    kinds = args.only or ["berth", "dockerspawner"]
    results = []
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        for kind in kinds:
            print(
                f"# {kind}: {args.sequential} sequential, {args.concurrent} concurrent spawns of "
                f"{args.image}"
                + (
                    f", {args.outside_load} CPU burners during the burst"
                    if args.outside_load
                    else ""
                ),
                flush=True,
            )
            results.append(
                run_scenarios(
                    kind,
                    args.image,
                    args.sequential,
                    args.concurrent,
                    args.timeout,
                    Path(tmp),
                    args.logs,
                    "\n" + args.berth_config + "\n" if kind == "berth" else "",
                    growth,
                    args.growth_probes,
                    (args.outside_load, args.outside_load_seconds, args.outside_load_in),
                    args.cpu_breakdown,
                )
            )
            print(json.dumps(results[-1]), flush=True)  # kept should a later spawner fail
    text = report(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
