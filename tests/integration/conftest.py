"""Fixtures for tests that run real containers on the local Docker engine.

- `docker_client`: a docker SDK client; the tests are skipped when no engine answers.
- `engine`: a docker SDK client for the module (the deployment and operations tests use it).
- `berth_image`: the image under test, BERTH_TEST_IMAGE (default berth/base-notebook:latest);
  skipped when it has not been built.
- `fw_image`: the image the firewall runs in, BERTH_FW_IMAGE (default berth/hub:latest), for
  the isolation and egress tests; skipped when it has not been built, failed without iptables.
- `run_container` / `run_container_module`: factories that create (and by default start)
  containers named and labelled `berth-test-…`, and remove every one of them when the test (or
  the module) ends, whatever happened.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

docker = pytest.importorskip("docker")

from engine_cleanup import remove_containers  # noqa: E402 -- after the docker check
from hub_harness import image_available  # noqa: E402
from run_once import run_once  # noqa: E402

DEFAULT_IMAGE = "berth/base-notebook:latest"
TEST_LABEL = "berth-test"
FW_IMAGE = os.environ.get("BERTH_FW_IMAGE", "berth/hub:latest")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "containers(*names): the named container scenarios a test uses, so that a module can "
        "start all the scenarios of the selected tests at once and let them boot in parallel",
    )


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    """A docker SDK client for a module's tests on the shared engine (120 s per request: the
    engine is slow at times, with everyone's tests on it)."""
    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"no Docker engine: {error}")
    yield client
    client.close()


def built_or_skip(image: str, how: str) -> str:
    """The image, if the engine has it; else the test is skipped, saying how to get it."""
    if not image_available(image):
        pytest.skip(f"image {image} is not built ({how})")
    return image


@pytest.fixture(scope="session")
def berth_image(docker_client: Any) -> str:
    image = os.environ.get("BERTH_TEST_IMAGE", DEFAULT_IMAGE)
    return built_or_skip(image, "set BERTH_TEST_IMAGE or build it first")


@pytest.fixture(scope="module")
def fw_image(docker_client: Any) -> str:
    built_or_skip(FW_IMAGE, "berth images build hub")
    # Present but without iptables is a failure, not a skip: `berth up` would run it.
    run_once(
        docker_client,
        FW_IMAGE,
        ["sh", "-c", "command -v iptables-nft-restore"],
        name=f"berth-fw-check-{uuid.uuid4().hex[:6]}",
    )
    return FW_IMAGE


class ContainerRunner:
    """Creates test containers and removes all of them on cleanup().

    Calling it takes the keyword arguments of `client.containers.create` and returns the
    container, started unless `start=False` (to copy files into it first with put_archive).
    """

    def __init__(self, client: Any, image: str, owner: str) -> None:
        self.client = client
        self.image = image
        self.owner = owner
        self.containers: list[Any] = []

    def __call__(self, image: str | None = None, *, start: bool = True, **kwargs: Any) -> Any:
        kwargs.setdefault("name", f"berth-test-{uuid.uuid4().hex[:12]}")
        kwargs["labels"] = {TEST_LABEL: self.owner, **kwargs.get("labels", {})}
        kwargs.setdefault("detach", True)
        container = self.client.containers.create(image or self.image, **kwargs)
        self.containers.append(container)
        if start:
            container.start()
        return container

    def cleanup(self) -> None:
        errors = remove_containers(self.containers)
        self.containers.clear()
        if errors:
            raise RuntimeError("could not remove test containers: " + "; ".join(errors))


@pytest.fixture
def run_container(docker_client: Any, berth_image: str, request: Any) -> Iterator[ContainerRunner]:
    runner = ContainerRunner(docker_client, berth_image, request.node.nodeid)
    try:
        yield runner
    finally:
        runner.cleanup()


@pytest.fixture(scope="module")
def run_container_module(
    docker_client: Any, berth_image: str, request: Any
) -> Iterator[ContainerRunner]:
    """Like run_container, for containers shared by the tests of a module."""
    runner = ContainerRunner(docker_client, berth_image, request.module.__name__)
    try:
        yield runner
    finally:
        runner.cleanup()


@pytest.fixture(scope="module")
def fleet(run_container_module: Any, tmp_path_factory: Any, request: Any) -> Iterator[Any]:
    """The image-startup scenarios (image_scenarios.py) that the module's selected tests name
    with `@pytest.mark.containers(...)`, all started at once so that they boot in parallel."""
    from image_fleet import Fleet

    fleet = Fleet(run_container_module, tmp_path_factory)
    needed: list[str] = []
    for item in request.session.items:
        if item.module is request.module:
            for marker in item.iter_markers("containers"):
                needed += [name for name in marker.args if name not in needed]
    fleet.launch(needed)
    yield fleet
