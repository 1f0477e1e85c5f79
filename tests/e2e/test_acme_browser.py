"""The browser trusts the chain berth-acme obtained, once the authority's root is trusted.

A `berth up` deployment with tls.acme gets its certificate from Pebble (tests/acme_deployment.py).
Debian's Chromium then opens the hub's login page at https://hub.berth.test:<port>/ (the name
mapped to 127.0.0.1 inside the browser, so nothing is resolved or fetched elsewhere), with
certificate errors NOT ignored: once with Pebble's root added to the browser's NSS database
(a temporary $HOME with its own ~/.pki/nssdb, made with certutil from libnss3-tools), and once
without it, which must fail with an untrusted-authority error: so the first run proves the
chain, not a lenient browser. Holds the deployment lock and needs `berth/hub` built from this
tree.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import pytest
from acme_deployment import NAME, acme_deployment
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("BERTH_E2E_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-quic",
        f"--host-resolver-rules=MAP {NAME} 127.0.0.1"]  # fmt: skip
VALIDITY = 3600  # no renewal during the test


@pytest.fixture(scope="module")
def acme(tmp_path_factory) -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if shutil.which("certutil") is None:
        pytest.skip("no certutil (apt-get install libnss3-tools; scripts/setup.sh --test does)")
    client = docker.from_env()
    try:
        with acme_deployment(tmp_path_factory.mktemp("acme-e2e"), client, VALIDITY) as found:
            dep, pebble = found
            root = pebble.root()

            def served() -> bool:
                """The issued chain on the HTTPS port (the proxy looks every 5 seconds)."""
                context = ssl.create_default_context(cadata=root.decode())
                try:
                    raw = socket.create_connection(("127.0.0.1", dep.port), timeout=10)
                    with context.wrap_socket(raw, server_hostname=NAME):
                        return True
                except (ssl.SSLError, OSError):
                    return False

            for _ in range(120):  # bounded: Pebble issues within seconds
                if served():
                    break
                time.sleep(1)
            else:
                raise AssertionError("no certificate from Pebble served within 120 s")
            yield found
    finally:
        client.close()


def nss_home(home: Path, root_pem: bytes | None) -> Path:
    """A $HOME whose NSS database (what Chromium on Linux trusts besides its own roots)
    trusts `root_pem` as a CA for web sites, or nothing extra when None."""
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{database}", "-N", "--empty-password"], check=True)
    if root_pem is not None:
        (home / "root.pem").write_bytes(root_pem)
        subprocess.run(
            ["certutil", "-d", f"sql:{database}", "-A", "-t", "C,,", "-n", "Pebble root",
             "-i", str(home / "root.pem")],
            check=True,
        )  # fmt: skip
    return home


def open_login(home: Path, port: int) -> tuple[int | None, str, list[str]]:
    """(HTTP status or None, the error or the page's title, hosts refused) for the login page."""
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS,
            env={**os.environ, "HOME": str(home)},
        )  # fmt: skip
        try:
            context = browser.new_context(ignore_https_errors=False, service_workers="block")

            def refuse(route: Any) -> None:
                refused.append(route.request.url)
                route.abort("blockedbyclient")

            context.route(lambda url: urlsplit(url).hostname not in (NAME, None), refuse)
            page = context.new_page()
            try:
                answer = page.goto(f"https://{NAME}:{port}/hub/login", timeout=60_000)
            except PlaywrightError as error:
                return None, str(error).splitlines()[0], refused
            page.wait_for_selector("input[name=username]", timeout=30_000)
            return (answer.status if answer else None), page.title(), refused
        finally:
            browser.close()


def test_the_login_page_loads_over_https_once_pebbles_root_is_trusted(acme, tmp_path):
    dep, pebble = acme
    root = pebble.root()
    status, title, refused = open_login(nss_home(tmp_path / "trusting", root), dep.port)
    assert status == 200, title
    assert refused == []


def test_without_the_root_the_browser_refuses_the_certificate(acme, tmp_path):
    dep, _ = acme
    status, error, _ = open_login(nss_home(tmp_path / "plain", None), dep.port)
    assert status is None
    assert "ERR_CERT_AUTHORITY_INVALID" in error, error
