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

NOT_TRIED = (
    "`berth up` works on Podman (isolated by the firewall in FORWARD, docs/podman.md), but this "
    "module was not run there yet"
)
CONFINEMENT = (
    "on Podman the inspect records answer differently: CapDrop lists the dropped defaults "
    "(not ALL), and the proxy attack's output did not parse; the confinement itself was not "
    "shown to differ"
)
SWARM = "Swarm mode is Docker's: Podman has no services, nodes, configs or overlay networks"

#: test module name -> why it cannot run on Podman.
DOCKER_ONLY: dict[str, str] = {
    # `berth up` and everything deployed by it (tests/deployment.py). test_isolation.py,
    # test_deploy_isolation.py and test_deploy.py pass on Podman.
    **dict.fromkeys(
        [
            "test_acme_deploy",
            "test_deploy_named_servers",
            "test_deploy_system_users",
            "test_fault_hub_disk",
            "test_faults",
            "test_oauth",
            "test_up_start_together",
            "test_acme_browser",
            "test_browser",
        ],
        NOT_TRIED,
    ),
    "test_deploy_confinement": CONFINEMENT,
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
