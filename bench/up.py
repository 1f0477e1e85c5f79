"""`berth up` timings, the hub's idle memory, and login → JupyterLab's first paint in Chromium.

    python bench/up.py [--cold]

- warm: time of `berth up` from a clean engine state (no hub, network or volumes) with the
  images already built;
- cold (--cold): the same after removing the hub and base-notebook images, so `berth up` builds
  them (layers below them, and the bootstrapped Debian base, stay cached);
- the hub container's idle memory 10 s after it is healthy;
- time from the browser's login POST to JupyterLab's first paint (the launcher), which includes
  spawning the user's server.

Uses the test deployment (its own network, volumes and a loopback port; exclusive per engine)
and tears it down. Bounded: every wait gives up after a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from deployment import Deployment, base_config, exclusive_hub, free_port, teardown
from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, is_local


def timed_up(workdir: Path) -> tuple[Deployment, float]:
    dep = Deployment(workdir, free_port(), base_config(0))
    dep.config["listen"]["port"] = dep.port
    dep.write_config()
    started = time.perf_counter()
    dep.up()
    return dep, time.perf_counter() - started


def hub_idle_memory_mib(client: docker.DockerClient) -> float:
    time.sleep(10)
    stats = client.containers.get("berth-hub").stats(stream=False)["memory_stats"]
    return (stats["usage"] - stats.get("stats", {}).get("inactive_file", 0)) / 2**20


def login_to_first_paint(dep: Deployment) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(ignore_https_errors=True)
        # Loopback only: abort anything addressed elsewhere.
        context.route(
            "**/*",
            lambda route: route.continue_() if is_local(route.request.url) else route.abort(),
        )
        page = context.new_page()
        page.goto(f"{dep.url}/hub/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", dep.admin_password)
        started = time.perf_counter()
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_selector(".jp-Launcher", timeout=180_000)
        elapsed = time.perf_counter() - started
        browser.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also time up with images rebuilt")
    args = parser.parse_args()
    client = docker.from_env()
    workdir = Path("/tmp/berth-bench-up")
    workdir.mkdir(exist_ok=True)
    with exclusive_hub():
        try:
            teardown(workdir)
            if args.cold:
                for image in ("berth/hub", "berth/base-notebook"):
                    for tag in ("latest", "0.1.0"):
                        with contextlib.suppress(docker.errors.ImageNotFound):
                            client.images.remove(f"{image}:{tag}", force=True)
                dep, cold = timed_up(workdir)
                print(f"berth up, cold (hub + base-notebook built): {cold:6.1f} s")
                teardown(workdir)
            dep, warm = timed_up(workdir)
            print(f"berth up, clean engine, images built:        {warm:6.1f} s")
            memory = hub_idle_memory_mib(client)
            print(f"hub idle memory:                             {memory:6.0f} MiB")
            print(
                f"login POST → JupyterLab first paint:         {login_to_first_paint(dep):6.1f} s"
            )
        finally:
            teardown(workdir)


if __name__ == "__main__":
    main()
