"""Fixtures shared by integration and browser tests, the `full` tier, and no skips under CI.

Tests marked ``@pytest.mark.full`` (hundreds of servers, a multi-node Swarm, long soaks) run only
from ``scripts/test.sh --full`` (which sets ``BERTH_FULL=1``); the CI command skips them with a
reason that says how to run them.

Under CI (``CI=true``, as `.ci/run` and most CI services set it) every other skip fails the run:
a green CI run means the engine, the images, the proxy, shellcheck, … were all there and every
test ran. The reason the test gave for skipping is kept in the failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from deployment import Deployment, deployment, failure_reports
from engine_support import docker_only_reason, on_podman


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "full: a heavy suite, run by `scripts/test.sh --full` (BERTH_FULL=1) only"
    )


def full_tier_skipped(item: pytest.Item) -> bool:
    """Whether the item is a heavy test and the heavy suites are not asked for."""
    return item.get_closest_marker("full") is not None and os.environ.get("BERTH_FULL") != "1"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="heavy suite: run `scripts/test.sh --full`")
    # Asks the engine only when a Docker-only test is collected (unit runs never do).
    podman = any(docker_only_reason(item.nodeid) for item in items) and on_podman()
    for item in items:
        if full_tier_skipped(item):
            item.add_marker(skip)
        reason = docker_only_reason(item.nodeid)
        if podman and reason:
            item.add_marker(pytest.mark.skip(reason=f"{DOCKER_ONLY_SKIP}{reason}"))


DOCKER_ONLY_SKIP = "Docker only (not on Podman): "


def engine_skipped(report: pytest.TestReport) -> bool:
    """A skip because the engine is Podman: the Docker job runs the test (not a CI failure)."""
    return DOCKER_ONLY_SKIP in _skip_reason(report)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_instead(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = f"a skip fails the run under CI (CI={os.environ.get('CI')}): " + (
        _skip_reason(report)
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        for text in failure_reports():  # empty without a deployment (tests/deployment.py)
            report.sections.append(("the deployment when the test failed", text))
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and under_ci()
        and not full_tier_skipped(item)
        and not engine_skipped(report)
    ):
        _fail_instead(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """A whole module skipped while importing (``pytest.importorskip``) also fails under CI."""
    report = yield
    if report.skipped and under_ci():
        _fail_instead(report)
    return report


@pytest.fixture(scope="module")
def hub_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One `berth up` per test module (it takes a few seconds), torn down afterwards."""
    with deployment(tmp_path_factory.mktemp("deploy")) as dep:
        yield dep
