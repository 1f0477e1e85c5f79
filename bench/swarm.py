"""Swarm spawner: 30 spawns spread over 3 nodes against 30 on a single engine node, in one run.

One real 3-node Swarm on this machine (tests/swarm_cluster.py) and one hub with the Swarm
spawner inside it (tests/integration/swarm_hub.py). Scenario ``spread``: N users' servers
requested at once, Swarm spreading them over the nodes; scenario ``one-node``: N more, all
constrained to one worker node. Per scenario: wall time (first request to last server answering
through the proxy), p50 and p95 of each spawn's latency, and whether every spawn succeeded. All
servers of a scenario are stopped before the next.

    python bench/swarm.py                  # 30 + 30
    python bench/swarm.py --spawns 5       # a quick check

On a single machine all "nodes" share the same CPUs, so this measures the spawner and the
Swarm's overhead, not the capacity a real multi-machine Swarm adds. Only talks to containers on
the network it creates; bounded in time; removes everything it creates.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

import requests  # noqa: E402
from hub_harness import default_image  # noqa: E402
from swarm_cluster import running_cluster  # noqa: E402
from swarm_hub import SwarmHub  # noqa: E402

CONFIG = """
def per_user(spawner):
    if spawner.user.name.startswith("one-"):
        spawner.placement_constraints = ["node.hostname == {node}"]

c.Spawner.pre_spawn_hook = per_user
c.Spawner.start_timeout = 900
c.Spawner.http_timeout = 300
c.SwarmSpawner.engine_threads = 64
"""


def wait_ready(hub: SwarmHub, user: str, started: float, deadline: float) -> float:
    url = hub.user_url(user) + "api/status"
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.token}"
    checks = 0
    while time.monotonic() < deadline:
        try:
            if session.get(url, timeout=5, allow_redirects=False).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        checks += 1
        if checks % 5 == 0:
            try:
                model = hub.user_model(user)
            except requests.RequestException:  # a busy hub: ask again later
                model = {"pending": "?"}
            if "" not in (model.get("servers") or {}) and not model.get("pending"):
                raise RuntimeError(f"spawn of {user} failed:\n{hub.log_tail(20)}")
        time.sleep(1.0)
    raise TimeoutError(f"{user} not ready in time")


def scenario(hub: SwarmHub, prefix: str, count: int, timeout: float) -> dict:
    users = [f"{prefix}{i:02d}" for i in range(count)]
    for user in users:
        hub.create_user(user)
    started = time.monotonic()
    deadline = started + timeout
    for user in users:
        r = hub.request_spawn(user)
        assert r.status_code in {201, 202}, r.text
    failures = 0
    latencies = []
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(wait_ready, hub, u, started, deadline) for u in users]
        for future in futures:
            try:
                latencies.append(future.result())
            except Exception as exc:
                failures += 1
                print(f"  failed: {exc}", file=sys.stderr)
    wall = time.monotonic() - started
    nodes: dict[str, int] = {}
    for user in users:
        try:
            name = hub.server_node(user)
        except Exception:
            continue
        nodes[name] = nodes.get(name, 0) + 1
    print(f"{prefix}: {count - failures}/{count} ok in {wall:.1f}s; {nodes}", file=sys.stderr)
    for user in users:
        try:
            hub.stop(user)
        except Exception as exc:
            print(f"  stop {user}: {exc}", file=sys.stderr)
    latencies.sort()
    return {
        "scenario": prefix.rstrip("-"),
        "spawns": count,
        "ok": count - failures,
        "wall": wall,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
        "nodes": nodes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    with running_cluster(3) as cluster:
        image = cluster.publish(default_image())
        # Every node pulls the image once, before anything is timed.
        cluster.manager.client.services.create(
            image,
            ["true"],
            name="prepull",
            mode={"Global": {}},
            restart_policy={"Condition": "none"},
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            tasks = cluster.manager.client.services.get("prepull").tasks()
            if len(tasks) == len(cluster.nodes) and all(
                t["Status"]["State"] in {"complete", "failed", "rejected"} for t in tasks
            ):
                break
            time.sleep(2)
        cluster.manager.client.services.get("prepull").remove()
        cluster.start_fence("berth-swarm-hub")  # servers start once fenced, as deployed
        single = cluster.nodes[1].name
        hub = SwarmHub(cluster, image, CONFIG.replace("{node}", single)).start()
        results = [
            scenario(hub, "spread-", args.spawns, args.timeout),
            scenario(hub, "one-", args.spawns, args.timeout),
        ]
        if any(r["ok"] != r["spawns"] for r in results):
            print(hub.log_tail(80), file=sys.stderr)
    print("| scenario | spawns | ok | wall s | p50 s | p95 s | servers per node |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        per_node = ", ".join(str(n) for n in sorted(r["nodes"].values(), reverse=True))
        print(
            f"| {r['scenario']} | {r['spawns']} | {r['ok']} | {r['wall']:.1f} | {r['p50']:.1f} "
            f"| {r['p95']:.1f} | {per_node} |"
        )
    return 0 if all(r["ok"] == r["spawns"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
