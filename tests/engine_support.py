"""Which engine the tests run on, and the test modules that need what only Docker has.

`scripts/test.sh --engine podman` runs the suite against Podman's Docker-compatible API
(scripts/start-podman.sh, docs/podman.md). The modules below need something Podman 4.3 does not
give, so on Podman they are skipped with the reason (the whole list is kept here, in one place,
instead of as marks spread over the modules); everything else runs. Under CI these skips do
not fail the run: the same tests run in the Docker job. An entry names a whole module
(``test_swarm_up``) or one test in it (``test_deploy::TestDeployment::test_x``, every
parametrization of it): a test no longer skips itself at run time because of the engine, which
CI would count as a failure.
"""

from __future__ import annotations

import functools
import os

import docker

from berth.engine_kind import PODMAN, engine_kind

SWARM = "Swarm mode is Docker's: Podman has no services, nodes, configs or overlay networks"
DOCKERD_RESTART = (
    "restarts dockerd (scripts/start-dockerd.sh --restart), which is not this engine: Podman's "
    "containers run on without its service, and live-restore is Docker's setting"
)

#: test module name, or module::test (the test's node id after the file, without parameters)
#: -> why it cannot run on Podman.
DOCKER_ONLY: dict[str, str] = {
    # Every other module, the `berth up` ones included, runs on Podman (docs/podman.md).
    "test_swarm_spawner": SWARM,
    "test_swarm_up": SWARM,
    "test_hub_image_speed": SWARM,
    "test_deploy_restarts::TestDeployment::test_servers_survive_a_dockerd_restart": DOCKERD_RESTART,
    "test_faults::test_dockerd_restart_with_twenty_servers": DOCKERD_RESTART,
}


def docker_only_reason(nodeid: str) -> str | None:
    """Why the test of pytest node id ``nodeid`` (``tests/integration/test_x.py::Class::test``)
    cannot run on Podman: its module's entry in DOCKER_ONLY, else its own."""
    path, _, inside = nodeid.partition("::")
    module = path.rsplit("/", 1)[-1].removesuffix(".py")
    test = inside.split("[", 1)[0]  # every parametrization of it
    return DOCKER_ONLY.get(module) or DOCKER_ONLY.get(f"{module}::{test}")


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
