"""Fixtures shared by integration and browser tests, and the `full` tier.

Tests marked ``@pytest.mark.full`` (hundreds of servers, a multi-node Swarm, long soaks) run only
from ``scripts/test.sh --full`` (which sets ``BERTH_FULL=1``); the CI command skips them with a
reason that says how to run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from deployment import Deployment, deployment


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "full: a heavy suite, run by `scripts/test.sh --full` (BERTH_FULL=1) only"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BERTH_FULL") == "1":
        return
    skip = pytest.mark.skip(reason="heavy suite: run `scripts/test.sh --full`")
    for item in items:
        if item.get_closest_marker("full") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def hub_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One `berth up` per test module (it takes a few seconds), torn down afterwards."""
    with deployment(tmp_path_factory.mktemp("deploy")) as dep:
        yield dep
