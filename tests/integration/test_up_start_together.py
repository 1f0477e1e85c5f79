"""berth up starts the containers of one step together (berth.deploy.swap.start_together), on the
real engine, with throwaway containers of berth/os-base that only sleep."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest

from berth.deploy.containerplan import ContainerPlan
from berth.deploy.hub import current
from berth.deploy.swap import Swap, start_together
from berth.errors import BerthError

pytestmark = pytest.mark.integration

IMAGE = "berth/os-base:bookworm"


@pytest.fixture
def names() -> Iterator[list[str]]:
    made = [f"berth-test-together-{uuid.uuid4().hex[:8]}-{n}" for n in range(2)]
    yield made
    client = docker.from_env()
    for name in made:
        found = current(client, name)
        if found is not None:
            found.remove(force=True)


def plan(name: str, image: str = IMAGE) -> ContainerPlan:
    kwargs = {
        "image": image,
        "name": name,
        "command": ["sleep", "60"],
        "network_mode": "none",
        "labels": {"berth-test": "start-together"},
    }
    files = {"/tmp/berth-test-file": (b"written before the start", 0o600)}
    return ContainerPlan("hub", kwargs, files, "test")


def test_every_container_of_the_step_is_started(names: list[str]) -> None:
    client = docker.from_env()
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} is not built")
    swaps = [Swap(plan(name), None) for name in names]
    start_together(client, swaps)
    for swap, name in zip(swaps, names, strict=True):
        assert swap.new is not None and swap.new.name == name
        swap.new.reload()
        assert swap.new.status == "running"
        code, output = swap.new.exec_run(["cat", "/tmp/berth-test-file"])
        assert (code, output) == (0, b"written before the start")


def test_a_failed_start_is_raised_after_the_others_ended(names: list[str]) -> None:
    """The undo that follows a failure removes the containers by name: the one that started
    must exist by then, and the failure must not be swallowed."""
    client = docker.from_env()
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} is not built")
    good = Swap(plan(names[0]), None)
    bad = Swap(plan(names[1], image=f"{IMAGE}-missing-{uuid.uuid4().hex[:6]}"), None)
    with pytest.raises((BerthError, docker.errors.ImageNotFound)):
        start_together(client, [bad, good])
    started = current(client, names[0])
    assert started is not None and started.status == "running"
    assert current(client, names[1]) is None
