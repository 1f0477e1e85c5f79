"""A user server's start in CPU seconds, per image: steadier than wall time on a shared machine.

    python bench/boot_cpu.py [--rounds 4] [--starts 4] --image A --image B

In a container of each image (on a bridge network of its own, with bench/standin_hub.py
answering the hub's API), a driver starts the server as a spawned container does --
`start.sh start-notebook.py` with the JUPYTERHUB_* variables, so start.sh, start-notebook.py
and jupyterhub-singleuser all run, one exec'ing the next -- and waits for the first 200 from
/user/bench/api on 127.0.0.1. It then reads the CPU seconds of that process (user + system,
its own and its waited-for children's, kept across the execs) and its RSS, stops it, and starts
the next one. Containers of the images alternate, their order reversed every round, so that
the machine's load hits each image alike. Prints per image the medians (and minimum CPU) of
rounds x starts starts, and the CPU ratio of the last image to the first.

The CPU clock counts only the server's own work, so it moves far less with other load than the
wall time (which is printed too); it leaves out the engine's container start. Bounded: at most
10 rounds of 10 starts, 60 s per start; every container is removed.
"""

from __future__ import annotations

import argparse
import json
import statistics

import docker
from image_sizes import SINGLEUSER_ENV
from standin_hub import standin_hub

DRIVER = r"""
import json, os, subprocess, sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
tick, out = os.sysconf("SC_CLK_TCK"), []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    server = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.perf_counter() - started < 60:
        try:
            with opener.open("http://127.0.0.1:8888/user/bench/api", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.005)
    else:
        server.kill()
        sys.exit("no answer within 60 s")
    wall = time.perf_counter() - started
    fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    status = open(f"/proc/{server.pid}/status").read()
    rss = int(status.split("VmRSS:")[1].split()[0]) / 1024
    server.kill()
    server.wait()
    out.append({"wall": wall, "cpu": cpu, "rss": rss})
    time.sleep(0.5)
print("RESULT " + json.dumps(out))
"""
COMMAND = ["/usr/local/bin/start.sh", "start-notebook.py"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--starts", type=int, default=4, help="starts per container")
    parser.add_argument("--image", action="append", required=True, help="repeat to compare")
    args = parser.parse_args()
    rounds, starts = max(1, min(args.rounds, 10)), max(1, min(args.starts, 10))
    client = docker.from_env()
    runs: dict[str, list[dict[str, float]]] = {image: [] for image in args.image}
    with standin_hub(client) as hub:
        environment = {
            **SINGLEUSER_ENV,
            "JUPYTERHUB_API_URL": hub.api_url,
            "JUPYTERHUB_ACTIVITY_URL": f"{hub.api_url}/users/bench/activity",
        }
        for round_ in range(rounds):
            order = args.image if round_ % 2 == 0 else args.image[::-1]
            for image in order:
                output = client.containers.run(
                    image,
                    ["python3", "-c", DRIVER, str(starts), *COMMAND],
                    entrypoint=[],
                    environment=environment,
                    network=hub.network,
                    remove=True,
                    labels={"berth-bench": "boot_cpu"},
                )
                line = [x for x in output.decode().splitlines() if x.startswith("RESULT ")][-1]
                runs[image] += json.loads(line.removeprefix("RESULT "))
    for image, figures in runs.items():

        def median(key: str, figures: list[dict[str, float]] = figures) -> float:
            return statistics.median(f[key] for f in figures)

        print(
            f"{image}: {len(figures)} starts: CPU median {median('cpu'):.3f} s "
            f"(min {min(f['cpu'] for f in figures):.3f}), wall median {median('wall'):.3f} s, "
            f"RSS median {median('rss'):.1f} MiB"
        )
    if len(args.image) > 1:
        first, last = (
            statistics.median(f["cpu"] for f in runs[i]) for i in (args.image[0], args.image[-1])
        )
        print(f"CPU ratio {args.image[-1]} / {args.image[0]}: {last / first:.3f}")


if __name__ == "__main__":
    main()
