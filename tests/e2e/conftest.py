"""A real browser for the end-to-end tests: Playwright driving Debian's Chromium.

- `browser`: one headless Chromium (/usr/bin/chromium, never a Playwright download) per module.
- `expect(...)` waits up to DEFAULT_TIMEOUT_MS by default, as the pages' actions do.
- `context`: a fresh browser context per test (no cookies carried over), trusting the deployment's
  self-signed certificate, and allowed to talk to the loopback deployment only: every request or
  WebSocket to another host is aborted and remembered (`context.blocked`), so nothing leaks out.
- `page`: a page of that context. When the test fails, each open page is saved as a screenshot
  under artifacts/e2e/ (FAILED-<test>-<n>.png).
- `artifacts`: artifacts/e2e/ at the repository root, where the tests save their screenshots.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("BERTH_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
# Generous: a 2-core machine may also be running other engineers' containers.
DEFAULT_TIMEOUT_MS = 60_000
# The same for `expect(...)`, which does not follow a context's default timeout and waits 5 s
# unless told otherwise: too little for what answers only after a request to a freshly
# started server (a new notebook's panel, a save, a rename, the admin page's user list).
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)


def is_local(url: str) -> bool:
    """Whether the browser may fetch `url`: the loopback deployment, or a page-internal URL."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep each phase's report on the test item, so fixtures can see whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would break asyncio-based tests collected after the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(
        ignore_https_errors=True,
        viewport={"width": 1280, "height": 800},
        # Service workers' own fetches would bypass the routes below.
        service_workers="block",
    )
    ctx.set_default_timeout(DEFAULT_TIMEOUT_MS)
    ctx.blocked = []

    def refuse(route: Any) -> None:
        ctx.blocked.append(route.request.url)
        route.abort("blockedbyclient")

    def refuse_socket(socket: Any) -> None:
        ctx.blocked.append(socket.url)
        socket.close()

    ctx.route(lambda url: not is_local(url), refuse)
    ctx.route_web_socket(lambda url: not is_local(url), refuse_socket)
    yield ctx
    if ctx.blocked:
        print(f"blocked outside requests: {sorted(set(ctx.blocked))}")
    ctx.close()


@pytest.fixture
def page(context: Any, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for number, open_page in enumerate(context.pages):
            try:
                open_page.screenshot(path=artifacts / f"FAILED-{name}-{number}.png", full_page=True)
            except PlaywrightError as error:
                print(f"no failure screenshot of {open_page.url}: {error}")
