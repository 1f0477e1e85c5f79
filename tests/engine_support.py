"""Which engine the tests run on, and the test modules that need what only Docker has.

`scripts/test.sh --engine podman` runs the suite against Podman's Docker-compatible API
(scripts/start-podman.sh, docs/podman.md). The modules below need something Podman 4.3 does not
give, so on Podman they are skipped with the reason (the whole list is kept here, in one place,
instead of as marks spread over the modules); everything else runs. Under CI these skips do
not fail the run: the same tests run in the Docker job.
"""

from __future__ import annotations

import functools
import os

import docker

from berth.engine_kind import PODMAN, engine_kind

SWARM = "Swarm mode is Docker's: Podman has no services, nodes, configs or overlay networks"

#: test module name -> why it cannot run on Podman.
DOCKER_ONLY: dict[str, str] = {
    # Every other module, the `berth up` ones included, runs on Podman (docs/podman.md).
    "test_swarm_spawner": SWARM,
    "test_swarm_up": SWARM,
    "test_hub_image_speed": SWARM,
}


@functools.cache
def engine_is_podman() -> bool:
    """Whether the engine of DOCKER_HOST is Podman (its /version names its components)."""
    client = docker.from_env(timeout=30)
    try:
        return engine_kind(client) == PODMAN
    finally:
        client.close()


def on_podman() -> bool:
    """BERTH_TEST_ENGINE (scripts/test.sh --engine sets it), else what the engine says it is.
    An engine that does not answer is not Podman: the tests then fail (or skip) their own way."""
    wanted = os.environ.get("BERTH_TEST_ENGINE", "")
    if wanted:
        return wanted == "podman"
    try:
        return engine_is_podman()
    except docker.errors.DockerException:
        return False
