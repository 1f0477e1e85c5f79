"""A real JupyterHub whose Berth spawner reaches the engine only through the engine guard.

The spawner's whole lifecycle (volume create and volume-init, root start with GRANT_SUDO,
post_start_cmd exec, readiness, poll, stop and remove) must work with nothing refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_reports import granted_capabilities
from guard_process import guard_process
from hub_harness import Hub
from hub_marks import HUB_MARKS

pytestmark = HUB_MARKS

SPAWNER_CONFIG = """
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.docker_url = "unix://GUARD_SOCKET"
c.ContainerSpawner.volumes = {{"{{prefix}}-{{username}}": "/home/jovyan/work"}}
c.ContainerSpawner.post_start_cmd = "touch /tmp/berth-post-start"

c.ContainerSpawner.environment = {{
    "GRANT_SUDO": lambda spawner: "yes" if spawner.user.name == "sudoer" else "",
}}
"""


@pytest.fixture(scope="module")
def hub_and_guard_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Path]]:
    hub = Hub(tmp_path_factory.mktemp("hub-behind-guard"))
    hub.prefix = f"berth-guard-{hub.run_id}"  # everything this test makes is berth-guard-…
    hub.network_name = f"{hub.prefix}-net"
    socket_path = hub.workdir / "guard.sock"
    log_path = hub.workdir / "guard.log"
    hub.spawner_config = SPAWNER_CONFIG.replace("GUARD_SOCKET", str(socket_path))
    args = ["--prefix", hub.prefix, "--network", "bridge",
            # the engine under test (Podman's socket under `scripts/test.sh --engine podman`)
            "--upstream", os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")]  # fmt: skip
    with guard_process(socket_path, log_path, args):
        try:
            yield hub.start(), log_path
        finally:
            hub.cleanup()
            print(hub.log_tail())


@pytest.mark.parametrize("user", ["alice", "sudoer"])
def test_the_spawner_lifecycle_through_the_guard(
    hub_and_guard_log: tuple[Hub, Path], user: str
) -> None:
    hub, guard_log = hub_and_guard_log
    hub.spawn(user)
    out = hub.execute(
        user, "import os; print(os.getuid(), os.access('/home/jovyan/work', os.W_OK))"
    )
    assert out.split() == ["1000", "True"]  # the volume-init container handed the volume over
    container = hub.container(user)
    assert container.exec_run(["test", "-e", "/tmp/berth-post-start"]).exit_code == 0
    if user == "sudoer":
        assert granted_capabilities(container.attrs["HostConfig"]) == {
            "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        }  # fmt: skip
    hub.stop(user)
    assert not hub.docker.containers.list(all=True, filters={"name": f"^{container.name}$"})
    assert hub.docker.volumes.get(f"{hub.prefix}-{user}").attrs["Labels"]["berth.managed"] == "true"
    assert "refused" not in guard_log.read_text()
