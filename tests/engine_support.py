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

ISOLATION = (
    "Podman 4.3's compatible API ignores the Berth network's enable_icc and user-server range, "
    "and netavark accepts the network's forwarded traffic ahead of DOCKER-USER, where Berth's "
    "firewall hooks in: user servers are not kept apart, so `berth up` refuses the network"
)
SWARM = "Swarm mode is Docker's: Podman has no services, nodes, configs or overlay networks"

#: test module name -> why it cannot run on Podman.
DOCKER_ONLY: dict[str, str] = {
    # `berth up` and everything deployed by it (tests/deployment.py).
    **dict.fromkeys(
        [
            "test_accounts",
            "test_acme_deploy",
            "test_backup",
            "test_deploy_named_servers",
            "test_deploy_system_users",
            "test_doctor",
            "test_fault_hub_disk",
            "test_faults",
            "test_oauth",
            "test_postgres",
            "test_upgrade_deploy",
            "test_up_start_together",
            "test_acme_browser",
            "test_backup_browser",
            "test_browser",
        ],
        "`berth up`: " + ISOLATION,
    ),
    "test_swarm_spawner": SWARM,
    "test_swarm_up": SWARM,
    "test_hub_image_speed": SWARM,
}


@functools.cache
def engine_is_podman() -> bool:
    """Whether the engine of DOCKER_HOST is Podman (its /version names its components)."""
    client = docker.from_env(timeout=30)
    try:
        components = client.version().get("Components") or []
    finally:
        client.close()
    return any("podman" in str(part.get("Name", "")).lower() for part in components)


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
