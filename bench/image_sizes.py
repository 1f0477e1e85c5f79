"""Image sizes against their budgets, and base-notebook's start-up time and idle memory.

    python bench/image_sizes.py [--runs 5] [--image berth/base-notebook:latest]

Prints each stack image's uncompressed size, the time from `docker run` to the first 200 from
/api/status (median of --runs, on 127.0.0.1), and the container's idle memory. Bounded: each
run stops and removes its container, and gives up after 120 s.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time

import docker
import requests

from berth.images.stack import STACK

# Budgets from the image-stack issue; docker-stacks' base-notebook is about 1.09 GB.
BUDGET_MB = {"foundation": 150, "base-notebook": 500}
TOKEN = "bench-token-not-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sizes(client: docker.DockerClient) -> None:
    print(f"{'image':<18} {'size (MB)':>10} {'budget':>8}")
    for image in STACK:
        try:
            size = client.images.get(image.tag("latest")).attrs["Size"] / 1e6
        except docker.errors.ImageNotFound:
            print(f"{image.name:<18} {'not built':>10}")
            continue
        budget = BUDGET_MB.get(image.name)
        verdict = "" if budget is None else f"{budget:>6}  {'ok' if size <= budget else 'OVER'}"
        print(f"{image.name:<18} {size:>10.0f} {verdict}")


def idle_memory_mib(container) -> float:
    stats = container.stats(stream=False)["memory_stats"]
    return (stats["usage"] - stats.get("stats", {}).get("inactive_file", 0)) / 2**20


def start_once(client: docker.DockerClient, image: str) -> tuple[float, float]:
    port = free_port()
    started = time.perf_counter()
    container = client.containers.run(
        image,
        detach=True,
        ports={"8888/tcp": ("127.0.0.1", port)},
        environment={"NOTEBOOK_ARGS": f"--IdentityProvider.token={TOKEN}"},
        labels={"berth-bench": "image_sizes"},
    )
    try:
        session = requests.Session()
        session.trust_env = False
        deadline = started + 120
        while time.perf_counter() < deadline:
            try:
                answer = session.get(
                    f"http://127.0.0.1:{port}/api/status",
                    headers={"Authorization": f"token {TOKEN}"},
                    timeout=2,
                )
                if answer.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("no 200 from /api/status within 120 s")
        ready = time.perf_counter() - started
        time.sleep(5)  # let start-up work settle before reading idle memory
        return ready, idle_memory_mib(container)
    finally:
        container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="berth/base-notebook:latest")
    args = parser.parse_args()
    client = docker.from_env()
    sizes(client)
    results = [start_once(client, args.image) for _ in range(max(1, min(args.runs, 20)))]
    times = [ready for ready, _ in results]
    memory = [mib for _, mib in results]
    print(f"\n{args.image}: docker run → first 200 from /api/status")
    print(
        f"  median {statistics.median(times):.2f} s  (min {min(times):.2f}, max {max(times):.2f},"
        f" runs {len(times)})"
    )
    print(f"  idle memory: median {statistics.median(memory):.0f} MiB")


if __name__ == "__main__":
    main()
