"""What jupyterhub-singleuser's own imports cost, as a ratio of jupyter_server's, per image.

    python bench/singleuser_imports.py [--runs 7] --image berth/base-notebook:latest [--image B]

In a throwaway container of each image (no network), one Python process imports
jupyter_server.serverapp (the anchor: every server pays it) and then
jupyterhub.singleuser.extension (what jupyterhub-singleuser adds), timing each with the
process's CPU clock and the wall clock; it then reports its RSS and how many of the hub's own
modules (SQLAlchemy, alembic, mako, jupyterhub.orm/handlers) it holds. Printed per image:
medians over the runs (interleaved, so that the machine's load hits every image alike) and the
ratio singleuser / anchor, which holds on a loaded machine where absolute times do not.
Bounded: --runs at most 20, each container removed.
"""

from __future__ import annotations

import argparse
import json
import statistics

import docker

PROBE = r"""
import json, sys, time
c0, w0 = time.process_time(), time.perf_counter()
import jupyter_server.serverapp
c1, w1 = time.process_time(), time.perf_counter()
import jupyterhub.singleuser.extension
c2, w2 = time.process_time(), time.perf_counter()
hub = ("sqlalchemy", "alembic", "mako", "jupyterhub.orm", "jupyterhub.handlers")
held = [m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in hub)]
status = open("/proc/self/status").read()
print(json.dumps({
    "anchor_cpu": c1 - c0, "anchor_wall": w1 - w0,
    "singleuser_cpu": c2 - c1, "singleuser_wall": w2 - w1,
    "rss_mib": int(status.split("VmRSS:")[1].split()[0]) / 1024,
    "hub_modules": len(held),
}))
"""


def run_once(client: docker.DockerClient, image: str) -> dict[str, float]:
    output = client.containers.run(
        image,
        ["python", "-c", PROBE],
        entrypoint=[],
        network_mode="none",
        remove=True,
        labels={"berth-bench": "singleuser_imports"},
    )
    return dict(json.loads(output.decode().strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--image", action="append", required=True, help="repeat to compare")
    args = parser.parse_args()
    client = docker.from_env()
    seen: dict[str, list[dict[str, float]]] = {image: [] for image in args.image}
    for _ in range(max(1, min(args.runs, 20))):
        for image in args.image:  # interleaved
            seen[image].append(run_once(client, image))
    for image, runs in seen.items():

        def median(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(run[key] for run in runs)

        cpu = statistics.median(r["singleuser_cpu"] / r["anchor_cpu"] for r in runs)
        wall = statistics.median(r["singleuser_wall"] / r["anchor_wall"] for r in runs)
        print(f"{image} ({len(runs)} runs, medians)")
        print(
            f"  import jupyter_server.serverapp (anchor): {median('anchor_cpu'):.2f} s CPU, "
            f"{median('anchor_wall'):.2f} s wall"
        )
        print(
            f"  + jupyterhub.singleuser.extension: {median('singleuser_cpu'):.2f} s CPU, "
            f"{median('singleuser_wall'):.2f} s wall = {cpu:.2f}x the anchor (CPU), "
            f"{wall:.2f}x (wall)"
        )
        print(
            f"  RSS after both: {median('rss_mib'):.1f} MiB; hub modules loaded: "
            f"{median('hub_modules'):.0f}"
        )


if __name__ == "__main__":
    main()
