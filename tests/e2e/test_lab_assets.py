"""JupyterLab's and the hub's static assets through the real proxy over TLS: compressed on the
wire, cacheable under their hashed names, and a second load of Lab served from the browser's
cache (issue 9). Assertions on headers and byte counts only, never on time.

Two things differ from the other browser tests, both because of the HTTP cache:

- the browser trusts the deployment's self-signed certificate by its key's hash
  (`--ignore-certificate-errors-spki-list`) instead of ignoring certificate errors: Chromium
  keeps nothing in its cache from a connection with a certificate error;
- requests leaving loopback are stopped by a proxy setting (every host but loopback goes to a
  loopback port where nothing listens), not by Playwright's routes: routing turns the cache
  off. Chrome's own network events show that no response came from elsewhere.

A response from the cache is counted by Chrome's `Network.requestServedFromCache` event: the
`fromDiskCache` / `fromMemoryCache` flags of `Network.responseReceived` stay false for HTTP
cache hits in this Chromium (156), which made a working cache read as "0 of 76 from the cache".
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from deployment import Deployment
from e2e.conftest import CHROMIUM, CHROMIUM_ARGS, is_local
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.e2e

LAB_TIMEOUT_MS = 180_000
BIG_ASSET = 1_000_000  # bytes, decoded: JupyterLab's core bundle is ~2.5 MB
YEAR = 365 * 24 * 3600


def spki_hash(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def max_age(cache_control: str) -> int:
    found = re.search(r"max-age=(\d+)", cache_control)
    return int(found[1]) if found else 0


@dataclass
class Load:
    """One page load as Chrome's network layer saw it (CDP Network events)."""

    encoded: int = 0  # bytes on the wire, headers included
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)  # request id -> response
    body_sizes: dict[str, int] = field(default_factory=dict)  # request id -> decoded bytes
    cached: set[str] = field(default_factory=set)  # request ids served from the browser's cache

    def received(self, event: dict[str, Any]) -> None:
        self.responses[event["requestId"]] = event["response"]

    def served_from_cache(self, event: dict[str, Any]) -> None:
        self.cached.add(event["requestId"])

    def data(self, event: dict[str, Any]) -> None:
        request = event["requestId"]
        self.body_sizes[request] = self.body_sizes.get(request, 0) + int(event["dataLength"])

    def finished(self, event: dict[str, Any]) -> None:
        self.encoded += int(event.get("encodedDataLength", 0))


@pytest.fixture(scope="module")
def dep(hub_deployment: Deployment) -> Deployment:
    assert hub_deployment.admin_password, "berth up printed no one-time password for admin"
    return hub_deployment


@pytest.fixture(scope="module")
def loads(dep: Deployment, artifacts: Path) -> Iterator[tuple[Load, Load, list[str]]]:
    """Log in, let the spawn flow open Lab (first load), then reload Lab (second load).
    Yields both loads and every URL off loopback that got an answer (none should)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    trust = f"--ignore-certificate-errors-spki-list={spki_hash(Path(dep.ca_file).read_bytes())}"
    with socket.socket() as dead_end, sync_playwright() as playwright:
        dead_end.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, trust],
            proxy={
                "server": f"http://127.0.0.1:{dead_end.getsockname()[1]}",
                "bypass": "127.0.0.1,localhost,[::1]",
            },
        )
        context = browser.new_context(service_workers="block")
        context.set_default_timeout(LAB_TIMEOUT_MS)
        first, second = Load(), Load()
        current = [first]
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.responseReceived", lambda event: current[0].received(event))
        cdp.on("Network.requestServedFromCache", lambda e: current[0].served_from_cache(e))
        cdp.on("Network.dataReceived", lambda event: current[0].data(event))
        cdp.on("Network.loadingFinished", lambda event: current[0].finished(event))
        try:
            login(page, dep)
            lab_drawn(page)
            current[0] = second
            page.reload()  # Chromium revalidates the page itself, not its immutable scripts
            lab_drawn(page)
        except Exception:
            page.screenshot(path=artifacts / f"FAILED-lab-assets-{current[0] is second}.png")
            raise
        answered_elsewhere = [
            r["url"] for load in (first, second) for r in load.responses.values()
            if not is_local(r["url"])
        ]  # fmt: skip
        browser.close()
    yield first, second, answered_elsewhere


def login(page: Any, dep: Deployment) -> None:
    page.goto(f"{dep.url}/hub/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", dep.admin_password)
    page.click("input[type=submit], button[type=submit]")


def lab_drawn(page: Any) -> None:
    """JupyterLab's launcher is drawn and Lab's fetches after it (settings, themes,
    extensions) are over."""
    page.wait_for_selector(".jp-Launcher", timeout=LAB_TIMEOUT_MS)
    with contextlib.suppress(PlaywrightTimeout):  # Lab polls; a quiet half second may not come
        page.wait_for_load_state("networkidle", timeout=30_000)


def biggest_script(load: Load) -> dict[str, Any]:
    """The response of the largest script (decoded size): JupyterLab's core bundle."""
    scripts = [i for i, r in load.responses.items() if r["url"].split("?")[0].endswith(".js")]
    assert scripts, "Lab loaded no JavaScript?"
    return load.responses[max(scripts, key=lambda i: load.body_sizes.get(i, 0))]


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in response.get("headers", {}).items()}


def test_the_browser_reached_only_the_deployment(loads: tuple[Load, Load, list[str]]) -> None:
    assert loads[2] == []


def test_labs_big_bundle_arrives_compressed_and_cacheable_through_the_proxy(
    dep: Deployment, loads: tuple[Load, Load, list[str]]
) -> None:
    """Lab's biggest script (the 2.5 MB core bundle) fetched again through
    configurable-http-proxy over TLS: gzip-encoded, a third of its size or less on the wire,
    and cacheable for a year under its content hash. Fails without compress_response in the
    image's jupyter_server_config.py (it was sent uncompressed)."""
    url = biggest_script(loads[0])["url"]
    assert url.startswith(f"{dep.url}/user/admin/static/lab/"), url
    auth = {"Authorization": f"token {dep.token()}", "Accept-Encoding": "gzip"}
    raw = dep.session().get(url, headers=auth, timeout=60, stream=True)
    assert raw.status_code == 200
    assert raw.headers.get("Content-Encoding") == "gzip"
    wire = raw.raw.read(decode_content=False)
    plain = gzip.decompress(wire)
    assert len(plain) >= BIG_ASSET
    assert len(wire) < len(plain) / 3
    cache_control = raw.headers.get("Cache-Control", "")
    assert max_age(cache_control) >= YEAR and "immutable" in cache_control, cache_control


def test_the_hubs_pages_and_static_files_are_compressed_and_cacheable(dep: Deployment) -> None:
    """The login page and its hashed static files (`?v=`) from the hub, through the proxy.
    Fails on main before this change: the hub sent them uncompressed."""
    session = dep.session()
    page = session.get(f"{dep.url}/hub/login", headers={"Accept-Encoding": "gzip"}, timeout=60)
    assert page.status_code == 200
    assert page.headers.get("Content-Encoding") == "gzip"
    css = re.search(r'href="(/hub/static/[^"]+\.css\?v=[0-9a-f]+)"', page.text)
    assert css, "no versioned stylesheet on the login page"
    static = session.get(f"{dep.url}{css[1]}", headers={"Accept-Encoding": "gzip"}, timeout=60)
    assert static.status_code == 200
    assert static.headers.get("Content-Encoding") == "gzip"
    assert max_age(static.headers.get("Cache-Control", "")) >= YEAR


def test_labs_biggest_script_reaches_the_browser_compressed_and_cacheable(
    loads: tuple[Load, Load, list[str]],
) -> None:
    """In Chromium, through the proxy over TLS, the first load (login, spawn, Lab) gets Lab's
    biggest script gzip-encoded with a year's Cache-Control."""
    script = headers_of(biggest_script(loads[0]))
    assert script.get("content-encoding") == "gzip", script
    assert max_age(script.get("cache-control", "")) >= YEAR, script


def test_a_reload_of_lab_comes_from_the_browsers_cache(
    loads: tuple[Load, Load, list[str]],
) -> None:
    """A reload of Lab takes its hashed scripts from the browser's cache (none of them asked
    of the server again, not even revalidated) and transfers under a quarter of the first
    load's bytes. On 2026-11-27: 42 of 75 responses from the cache, every one of the 39 scripts
    under static/lab/; 54 kB against 1.74 MB for the first load."""
    first, second, _ = loads
    lab_scripts = {
        request: response["url"]
        for request, response in second.responses.items()
        if "/static/lab/" in response["url"] and response["url"].split("?")[0].endswith(".js")
    }
    assert len(lab_scripts) >= 10, sorted(lab_scripts.values())
    fetched = sorted(url for request, url in lab_scripts.items() if request not in second.cached)
    assert fetched == [], f"{len(second.cached)} of {len(second.responses)} from the cache"
    assert second.encoded < first.encoded / 4, (first.encoded, second.encoded)
