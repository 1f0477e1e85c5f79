"""`berth up` timings, the hub's idle memory, and login → JupyterLab's first paint in Chromium.

    python bench/up.py [--cold] [--no-memory] [--hops] [--login-only]
                       [--image IMAGE [--image IMAGE …] [--rounds N]]

- warm: time of `berth up` from a clean engine state (no hub, network or volumes) with the
  images already built;
- again: `berth up` once more, the deployment up and nothing changed;
- after down: `berth up` after `berth down` (volumes and accounts kept);
- cold (--cold): the same after removing the hub and base-notebook images, so `berth up` builds
  them (layers below them, and the bootstrapped Debian base, stay cached);
- the hub container's idle memory 10 s after it is healthy;
- time from the browser's login POST to JupyterLab's first paint, which includes spawning the
  user's server, with its steps (the login POST's answer, the spawn page, the redirect to Lab,
  Lab's shell visible, the launcher drawn), through the real proxy over TLS;
- with --hops, every document request of that first load (redirects included: the OAuth round
  trips between the user's server and the hub) with the time it was sent, and each JavaScript
  and CSS file Lab loaded (sent, first byte, finished, bytes on the wire), to see where the
  seconds between login and first paint go: waiting on the server or the browser's own work;
- bytes the browser transferred (encoded, headers included, as Chrome's network layer counts
  them) for that first load, and again for a reload of Lab, with the count of responses served
  from the browser's cache.

--image spawns the user's server from another notebook image (`images.default`), e.g. one
built with `berth images build --prefix …`, to compare it with berth/base-notebook. Given more
than once, the images take turns (`--rounds` times each, each turn with a fresh `berth up`:
old, new, old, new, …, so a noisy machine weighs on both alike), and a summary gives each
image's median login → first paint and bytes of the first load, and their ratios to the first
image's.

Uses the test deployment (its own network, volumes and a loopback port; exclusive per engine)
and tears it down. Bounded: every wait gives up after a few minutes.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from deployment import Deployment, base_config, exclusive_hub, free_port, teardown
from e2e.conftest import CHROMIUM, CHROMIUM_ARGS

LAB_TIMEOUT_MS = 180_000


def timed_up(workdir: Path, image: str | None = None) -> tuple[Deployment, float]:
    dep = Deployment(workdir, free_port(), base_config(0))
    dep.config["listen"]["port"] = dep.port
    if image:
        dep.config["images"] = {"default": image}
    dep.write_config()
    return dep, timed(dep.up)


def timed(step: Any) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def hub_idle_memory_mib(client: docker.DockerClient) -> float:
    time.sleep(10)
    stats = client.containers.get("berth-hub").stats(stream=False)["memory_stats"]
    return (stats["usage"] - stats.get("stats", {}).get("inactive_file", 0)) / 2**20


@dataclass
class Traffic:
    """What Chrome's network layer reports for one page load (CDP Network events)."""

    encoded_bytes: int = 0  # on the wire, headers included, compressed when it was
    body_bytes: int = 0  # decoded bodies
    responses: int = 0
    from_cache: int = 0
    marks: dict[str, float] = field(default_factory=dict)
    hops: list[tuple[float, str]] = field(default_factory=list)  # (seconds, "GET /path")
    # requestId -> [path, sent, first byte, finished, bytes on the wire] of scripts and styles
    assets: dict[str, list[Any]] = field(default_factory=dict)

    def on_response(self, event: dict[str, Any]) -> None:
        self.responses += 1

    def on_served_from_cache(self, event: dict[str, Any]) -> None:
        # Chrome says so with this event; responseReceived's fromDiskCache flag stays false
        # for HTTP cache hits in Chromium 156 (it read "0 of 74 from the cache" before).
        self.from_cache += 1

    def on_finished(self, event: dict[str, Any], at: float) -> None:
        self.encoded_bytes += int(event.get("encodedDataLength", 0))
        if event.get("requestId") in self.assets:
            self.assets[event["requestId"]][3:] = [at, int(event.get("encodedDataLength", 0))]

    def on_data(self, event: dict[str, Any]) -> None:
        self.body_bytes += int(event.get("dataLength", 0))

    def line(self) -> str:
        return (
            f"{self.encoded_bytes / 2**20:6.2f} MiB transferred "
            f"({self.body_bytes / 2**20:.2f} MiB of bodies), {self.responses} responses, "
            f"{self.from_cache} from the browser cache"
        )


def trusted_certificate_args(dep: Deployment) -> list[str]:
    """Chromium trusting the hub's self-signed certificate (by its key's SPKI hash) rather than
    ignoring certificate errors: Chromium caches nothing fetched over a connection with a
    certificate error, so the reload's figures would show no cache at all."""
    cert = x509.load_pem_x509_certificate(Path(dep.ca_file).read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return [f"--ignore-certificate-errors-spki-list={digest}"]


def login_to_first_paint(dep: Deployment) -> tuple[Traffic, Traffic]:
    """The first load (login POST → spawn → Lab) and a reload of Lab, each with its traffic."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as dead_end, sync_playwright() as playwright:
        # Loopback only, without Playwright's routes (they turn the browser's cache off):
        # every other host goes through a "proxy" on a loopback port where nothing listens.
        dead_end.bind(("127.0.0.1", 0))
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, *trusted_certificate_args(dep)],
            proxy={
                "server": f"http://127.0.0.1:{dead_end.getsockname()[1]}",
                "bypass": "127.0.0.1,localhost,[::1]",
            },
        )
        context = browser.new_context(service_workers="block")
        page = context.new_page()
        page.goto(f"{dep.url}/hub/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", dep.admin_password)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        first, again = Traffic(), Traffic()
        current = [first]
        started = [time.perf_counter()]

        def mark(name: str) -> None:
            current[0].marks.setdefault(name, time.perf_counter() - started[0])

        def on_document(response: Any) -> None:
            if response.request.resource_type != "document":
                return
            url = response.url
            if "/hub/login" in url and response.request.method == "POST":
                mark("login POST answered")
            elif "/hub/spawn-pending" in url:
                mark("spawn-pending page")
            elif "/hub/spawn" in url:
                mark("spawn page")
            elif "/lab" in url:
                mark("Lab's HTML")

        page.on("response", on_document)

        def on_request(event: dict[str, Any]) -> None:
            if event.get("type") in ("Script", "Stylesheet"):
                at = time.perf_counter() - started[0]
                path = urlsplit(event["request"]["url"]).path.rsplit("/", 1)[-1]
                current[0].assets[event["requestId"]] = [path, at, None, None, 0]
            if event.get("type") == "Document" or "redirectResponse" in event:
                request = event["request"]
                path = urlsplit(request["url"]).path
                current[0].hops.append(
                    (time.perf_counter() - started[0], f"{request['method']} {path}")
                )

        cdp.on("Network.requestWillBeSent", on_request)

        def on_response(event: dict[str, Any]) -> None:
            current[0].on_response(event)
            if event.get("requestId") in current[0].assets:
                current[0].assets[event["requestId"]][2] = time.perf_counter() - started[0]

        cdp.on("Network.responseReceived", on_response)
        cdp.on("Network.requestServedFromCache", lambda e: current[0].on_served_from_cache(e))
        cdp.on(
            "Network.loadingFinished",
            lambda e: current[0].on_finished(e, time.perf_counter() - started[0]),
        )
        cdp.on("Network.dataReceived", lambda e: current[0].on_data(e))
        started[0] = time.perf_counter()
        login_posted = time.time()
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_selector(".jp-LabShell", state="visible", timeout=LAB_TIMEOUT_MS)
        mark("Lab's shell visible")
        page.wait_for_selector(".jp-Launcher", timeout=LAB_TIMEOUT_MS)
        mark("launcher drawn (first paint)")
        for name, at in paint_marks(page, login_posted).items():
            current[0].marks[name] = at
        with contextlib.suppress(Exception):  # Lab polls; idle may not come
            page.wait_for_load_state("networkidle", timeout=15_000)
        current[0] = again
        started[0] = time.perf_counter()
        page.reload()
        page.wait_for_selector(".jp-Launcher", timeout=LAB_TIMEOUT_MS)
        mark("reload: launcher drawn")
        with contextlib.suppress(Exception):
            page.wait_for_load_state("networkidle", timeout=15_000)
        browser.close()
    return first, again


PAINT_ENTRIES = """() => ({
    origin: performance.timeOrigin,
    paints: performance.getEntriesByType('paint').map(e => [e.name, e.startTime]),
})"""


def paint_marks(page: Any, login_posted: float) -> dict[str, float]:
    """Chromium's own paint entries of Lab's page (the Paint Timing API: ``first-paint`` and
    ``first-contentful-paint``), in seconds from the login POST. They are the browser's
    figures for the *document*, which is Lab's HTML: its first contentful paint is Lab's
    splash/loading page, well before the shell and the launcher are drawn. ``timeOrigin`` is a
    wall-clock time in ms since the epoch, on this machine's clock like ``login_posted``."""
    found = page.evaluate(PAINT_ENTRIES)
    origin = float(found["origin"]) / 1000
    labels = {
        "first-paint": "Lab's first paint (Paint Timing API)",
        "first-contentful-paint": "Lab's first contentful paint (Paint Timing API)",
    }
    return {
        labels.get(name, name): origin + float(start) / 1000 - login_posted
        for name, start in found["paints"]
    }


def print_login_logs(client: docker.DockerClient, since: int) -> None:
    """The hub's and the user server's log lines of the login, with their timestamps."""
    for container in client.containers.list(filters={"network": "berth-test-deploy-net"}):
        if container.name != "berth-hub" and not container.name.startswith("berth-admin"):
            continue
        logs = container.logs(since=since, timestamps=True).decode(errors="replace")
        print(f"{container.name}'s log:")
        for line in logs.splitlines()[:80]:
            print(f"  {line[11:23]} {line[31:200]}")


def results_in(results: dict[str | None, list[tuple[float, int]]]) -> int:
    return sum(len(runs) for runs in results.values())


def one_deployment(
    client: docker.DockerClient, workdir: Path, image: str | None, args: Any, extras: bool
) -> Traffic:
    """`berth up` with `image`, the login → first paint figures; with `extras` (the first
    deployment only) also up again, up after down and the hub's memory, unless --login-only."""
    dep, warm = timed_up(workdir, image)
    print(f"berth up, clean engine, images built:        {warm:6.1f} s")
    if extras and not args.login_only:
        print(f"berth up again, nothing changed:             {timed(dep.up):6.1f} s")
        down = dep.berth("down")
        assert down.returncode == 0, down.stderr
        print(f"berth up after berth down:                   {timed(dep.up):6.1f} s")
    if extras and not (args.no_memory or args.login_only):
        memory = hub_idle_memory_mib(client)
        print(f"hub idle memory:                             {memory:6.0f} MiB")
    login_started = int(time.time()) - 1
    first, again = login_to_first_paint(dep)
    for name, at in [
        *sorted(first.marks.items(), key=lambda m: m[1]),
        *again.marks.items(),
    ]:
        print(f"  {name + ':':41}  {at:6.2f} s")
    if args.hops:
        print("first load's documents (sent at):")
        for at, hop in first.hops:
            print(f"  {at:6.2f} s  {hop}")
        print("first load's scripts and styles (sent, first byte, finished, KiB):")
        for path, sent, first_byte, done, size in sorted(first.assets.values(), key=lambda a: a[1]):
            if done is not None:
                print(
                    f"  {sent:6.2f} {first_byte or 0:6.2f} {done:6.2f} {size / 1024:7.1f}  {path}"
                )
        print_login_logs(client, login_started)
    print(f"first load (login → Lab): {first.line()}")
    print(f"reload of Lab:            {again.line()}")
    return first


def print_summary(results: dict[str | None, list[tuple[float, int]]]) -> None:
    """Each image's median login → first paint and first-load bytes, and ratios to the first."""
    import statistics

    print("summary (median of the rounds; ratio to the first image):")
    base_paint = base_bytes = 0.0
    for index, (image, runs) in enumerate(results.items()):
        paint = statistics.median(run[0] for run in runs)
        size = statistics.median(run[1] for run in runs)
        if index == 0:
            base_paint, base_bytes = paint, size
        each = ", ".join(f"{run[0]:.2f}" for run in runs)
        print(
            f"  {image or 'default image'}: login → first paint {paint:6.2f} s"
            f" (x{paint / base_paint:.3f}; rounds: {each}),"
            f" first load {size / 2**20:.3f} MiB (x{size / base_bytes:.4f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also time up with images rebuilt")
    parser.add_argument("--no-memory", action="store_true", help="skip the hub memory figure")
    parser.add_argument(
        "--login-only", action="store_true", help="one `berth up`, then the login figures only"
    )
    parser.add_argument("--hops", action="store_true", help="list the first load's documents")
    parser.add_argument(
        "--image",
        action="append",
        help="the user servers' image (default: berth.yaml's default); repeat to compare images",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="turns of each --image (login figures only)"
    )
    args = parser.parse_args()
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds: 1 to 10")
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
                _, cold = timed_up(workdir)
                print(f"berth up, cold (hub + base-notebook built): {cold:6.1f} s")
                teardown(workdir)
            images: list[str | None] = list(args.image or [None])
            results: dict[str | None, list[tuple[float, int]]] = {image: [] for image in images}
            for turn in range(args.rounds):
                for image in images:
                    done = results_in(results)
                    if done:
                        teardown(workdir)
                    if len(images) > 1 or args.rounds > 1:
                        print(f"--- {image or 'default image'}, round {turn + 1}")
                    first = one_deployment(client, workdir, image, args, extras=not done)
                    results[image].append(
                        (first.marks.get("launcher drawn (first paint)", 0.0), first.encoded_bytes)
                    )
            if len(images) > 1 or args.rounds > 1:
                print_summary(results)
        finally:
            teardown(workdir)


if __name__ == "__main__":
    main()
