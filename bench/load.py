"""Load: N users log in and start JupyterLab in one burst, then a soak with kernels executing.

    python bench/load.py [--users 50] [--soak-minutes 30] [--sample-every 30]

- burst: N people log in through the proxy at the same moment (the login form, its XSRF field
  and cookie, as a browser), each starts their server (GET /hub/spawn) and follows
  GET /user/<name>/lab until JupyterLab answers 200. Prints failures and p50/p95/max of
  login -> JupyterLab, per user and overall;
- soak: every user's server runs a kernel that executes a small cell every --cell-every
  seconds, while the hub's memory is sampled (the RSS of each process in the hub container,
  through the engine's `top`) every --sample-every seconds. Prints the samples, the failed
  cells, and the least-squares slope of the hub's RSS in MiB/hour.

Uses the test deployment (tests/deployment.py: its own network, volumes and a loopback port,
exclusive per engine; run it under `flock /tmp/berth-hub-image.lock` like the deployment
tests) and tears it down at the end. Traffic goes to 127.0.0.1 only. Bounded: each wait gives
up after a few minutes, the soak ends after --soak-minutes.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "integration")]
from deployment import Deployment, deployment  # noqa: E402
from hub_users import BrowserUser, add_users  # noqa: E402
from kernel_client import KernelClient  # noqa: E402

CELL = "total = sum(i * i for i in range(200_000))\nprint(total)"
CELL_OUTPUT = f"{sum(i * i for i in range(200_000))}\n"


@dataclass
class BurstResult:
    user: str
    seconds: float | None = None
    error: str = ""


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) samples, in MiB per hour."""
    if len(samples) < 2:
        return 0.0
    xs, ys = [t for t, _ in samples], [m for _, m in samples]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread * 3600


def hub_rss_mib(engine: docker.DockerClient) -> dict[str, float]:
    """RSS of each process in the hub container (by command), in MiB."""
    top = engine.containers.get("berth-hub").top(ps_args="-o pid,rss,args")
    titles = [title.upper() for title in top["Titles"]]
    rss_at, args_at = titles.index("RSS"), titles.index("COMMAND")
    rss: dict[str, float] = {}
    for row in top["Processes"]:
        command = row[args_at].split()
        name = Path(command[0]).name
        if name.startswith("python") and len(command) > 1:
            name = Path(command[1]).name if command[1] != "-m" else command[2]
        rss[name] = rss.get(name, 0.0) + int(row[rss_at]) / 1024
    return rss


def make_accounts(dep: Deployment, names: list[str], how: str) -> dict[str, str]:
    """Accounts through the sign-up form (open sign-up: seconds) or `berth users add` (one
    docker exec each: minutes for 50 on a busy machine); returns name -> password."""
    if how == "cli":
        return add_users(dep, names)
    passwords = {name: secrets.token_urlsafe(18) for name in names}

    def sign_up(name: str) -> None:
        person = BrowserUser(dep, name, passwords[name])
        try:
            person.sign_up()
        finally:
            person.session.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(sign_up, names))
    return passwords


def burst(dep: Deployment, passwords: dict[str, str], timeout: float) -> list[BurstResult]:
    start = threading.Barrier(len(passwords))

    def one(name: str) -> BurstResult:
        person = BrowserUser(dep, name, passwords[name])
        start.wait()
        began = time.perf_counter()
        try:
            person.login()
            person.spawn()
            person.wait_for_lab(timeout=timeout)
        except Exception as error:
            return BurstResult(name, error=f"{type(error).__name__}: {error}"[:300])
        finally:
            person.session.close()
        return BurstResult(name, seconds=time.perf_counter() - began)

    with ThreadPoolExecutor(len(passwords)) as pool:
        return list(pool.map(one, passwords))


def report_burst(results: list[BurstResult], wall: float) -> None:
    times = [r.seconds for r in results if r.seconds is not None]
    failures = [r for r in results if r.seconds is None]
    print(f"\n== burst: {len(results)} users, wall time {wall:.1f} s")
    for result in sorted(results, key=lambda r: r.seconds or 1e9):
        shown = f"{result.seconds:6.1f} s" if result.seconds is not None else "FAILED"
        print(f"  {result.user:<12} {shown} {result.error}")
    print(f"failures: {len(failures)}")
    if times:
        print(
            f"login -> JupyterLab 200: p50 {percentile(times, 0.5):.1f} s, "
            f"p95 {percentile(times, 0.95):.1f} s, max {max(times):.1f} s"
        )


class KernelLoop(threading.Thread):
    """One user's kernel running CELL every `every` seconds until stopped."""

    def __init__(self, dep: Deployment, user: str, token: str, every: float, stop: threading.Event):
        super().__init__(name=f"kernel-{user}", daemon=True)
        self.client = KernelClient(f"{dep.url}/user/{user}/", token, timeout=60)
        self.every, self.stop = every, stop
        self.cells = 0
        self.failures: list[str] = []

    def run(self) -> None:
        try:
            self.client.start()
            while not self.stop.is_set():
                try:
                    result = self.client.execute(CELL)
                    if not result.ok or result.stdout != CELL_OUTPUT:
                        self.failures.append(result.describe()[:200])
                except Exception as error:
                    self.failures.append(f"{type(error).__name__}: {error}"[:200])
                    if len(self.failures) > 20:
                        return  # this kernel is broken; the report says so
                self.cells += 1
                self.stop.wait(self.every)
        except Exception as error:
            self.failures.append(f"kernel start: {type(error).__name__}: {error}"[:200])
        finally:
            self.client.shutdown()


def soak(
    dep: Deployment, engine: docker.DockerClient, users: list[str], args: argparse.Namespace
) -> None:
    print(
        f"\n== soak: {len(users)} kernels, one cell every {args.cell_every:.0f} s each, "
        f"{args.soak_minutes:.0f} min"
    )
    stop = threading.Event()
    token = dep.token("admin")  # the admin may access every server (JupyterHub's admin role)
    loops = [KernelLoop(dep, user, token, args.cell_every, stop) for user in users]
    for loop in loops:
        loop.start()
        time.sleep(0.2)  # kernels start one after the other, not all in the same second
    began = time.monotonic()
    samples: list[tuple[float, float]] = []
    print(f"{'minute':>7} {'hub RSS MiB':>12}  per process")
    try:
        while True:
            elapsed = time.monotonic() - began
            rss = hub_rss_mib(engine)
            total = sum(rss.values())
            samples.append((elapsed, total))
            parts = ", ".join(f"{name} {mib:.0f}" for name, mib in sorted(rss.items()))
            print(f"{elapsed / 60:7.1f} {total:12.1f}  {parts}", flush=True)
            if elapsed >= args.soak_minutes * 60:
                break
            time.sleep(min(args.sample_every, max(0.0, args.soak_minutes * 60 - elapsed)))
    finally:
        stop.set()
        for loop in loops:
            loop.join(timeout=90)
    cells = sum(loop.cells for loop in loops)
    failures = [(loop.name, f) for loop in loops for f in loop.failures]
    print(f"cells executed: {cells}, failed: {len(failures)}")
    for name, failure in failures[:10]:
        print(f"  {name}: {failure}")
    # The first samples include start-up growth (kernels, routes); the slope over the second
    # half is the one that says whether memory keeps growing.
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    print(
        f"hub RSS: first {samples[0][1]:.1f} MiB, last {samples[-1][1]:.1f} MiB; "
        f"slope {slope_per_hour(samples):+.1f} MiB/hour overall, "
        f"{slope_per_hour(half):+.1f} MiB/hour over the second half"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="people in the burst (default 50)")
    parser.add_argument("--soak-minutes", type=float, default=30, help="0: no soak (default 30)")
    parser.add_argument("--sample-every", type=float, default=30, help="seconds between samples")
    parser.add_argument("--cell-every", type=float, default=10, help="seconds between cells")
    parser.add_argument(
        "--accounts",
        choices=["signup", "cli"],
        default="signup",
        help="make accounts through open sign-up (default) or `berth users add`",
    )
    parser.add_argument("--timeout", type=float, default=600, help="longest wait for one lab")
    parser.add_argument(
        "--logs-dir",
        type=Path,
        help="keep the service containers' logs here before the deployment is torn down",
    )
    args = parser.parse_args()
    if not 1 <= args.users <= 200:
        parser.error("--users must be between 1 and 200")
    if not 0 <= args.soak_minutes <= 240:
        parser.error("--soak-minutes must be between 0 and 240")
    engine = docker.from_env(timeout=120)
    extra = {"auth": {"type": "native", "native": {"open_signup": True}}}
    if args.accounts == "cli":
        extra = {}
    # A fresh directory: the deployment caches the hub's self-signed certificate in it, and
    # every deployment makes a new one.
    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-load-"))
    with deployment(workdir, extra) as dep:
        names = [f"load{i:03d}" for i in range(args.users)]
        began = time.perf_counter()
        passwords = make_accounts(dep, names, args.accounts)
        print(f"{len(names)} accounts made in {time.perf_counter() - began:.0f} s (not timed)")
        print(f"hub RSS before the burst: {sum(hub_rss_mib(engine).values()):.1f} MiB")
        began = time.perf_counter()
        results = burst(dep, passwords, args.timeout)
        report_burst(results, time.perf_counter() - began)
        if args.soak_minutes > 0:
            ready = [r.user for r in results if r.seconds is not None]
            soak(dep, engine, ready, args)
        if args.logs_dir:
            keep_logs(engine, args.logs_dir)
    engine.close()


def keep_logs(engine: docker.DockerClient, directory: Path) -> None:
    """The logs of the deployment's service containers, for a burst that needs explaining."""
    directory.mkdir(parents=True, exist_ok=True)
    for container in engine.containers.list(filters={"label": "berth.deploy.role"}):
        path = directory / f"{container.name}.log"
        path.write_bytes(container.logs(timestamps=True))
        print(f"kept {path}")


if __name__ == "__main__":
    main()
