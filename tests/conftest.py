"""Fixtures shared by integration and browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deployment import Deployment, deployment


@pytest.fixture(scope="module")
def hub_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One `berth up` per test module (it takes a few seconds), torn down afterwards."""
    with deployment(tmp_path_factory.mktemp("deploy")) as dep:
        yield dep
