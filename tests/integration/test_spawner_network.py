"""ContainerSpawner reaching servers by their address on a network, and root-start switches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_reports import effective_capabilities, granted_capabilities
from hub_harness import Hub
from hub_marks import HUB_MARKS

pytestmark = HUB_MARKS

SPAWNER_CONFIG = """
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "never"
c.ContainerSpawner.network_name = "{network}"
c.ContainerSpawner.use_internal_ip = True
c.ContainerSpawner.volumes = {{"{{prefix}}-{{username}}": "/home/jovyan/work"}}

def pre_spawn_hook(spawner):
    if spawner.user.name == "rooty":
        spawner.environment = {{"NB_UID": "1010", "NB_GID": "1010"}}
    elif spawner.user.name == "sudoer":
        spawner.environment = {{"GRANT_SUDO": "yes"}}

c.ContainerSpawner.pre_spawn_hook = pre_spawn_hook
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub-net"), SPAWNER_CONFIG)
    try:
        yield h.start()
    finally:
        h.cleanup()


def test_server_reached_by_its_network_address(hub: Hub) -> None:
    hub.spawn("net")
    container = hub.container("net")
    # (HostConfig.NetworkMode says "bridge" on Podman: the attached networks tell the same.)
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [hub.network_name]
    ports = container.attrs["NetworkSettings"]["Ports"] or {}
    assert all(binding is None for binding in ports.values())  # nothing published on the host
    address = container.attrs["NetworkSettings"]["Networks"][hub.network_name]["IPAddress"]
    assert hub.user_model("net")["servers"][""]["url"] == "/user/net/"
    assert address in hub.log_tail(200)  # the proxy route points at the container address
    assert hub.execute("net", "print('hi')").strip() == "hi"
    hub.stop("net")


def test_root_start_switches_get_only_their_capabilities(hub: Hub) -> None:
    hub.spawn("rooty")
    host = hub.container("rooty").attrs["HostConfig"]
    assert granted_capabilities(host) == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}
    assert host["SecurityOpt"] == ["no-new-privileges"]
    code = "import os; print(os.getuid(), os.getgid(), os.stat('/home/jovyan/work').st_uid)"
    assert hub.execute("rooty", code).split() == ["1010", "1010", "1010"]
    # The start script's switch to the user leaves it none of them (Podman also hands them to
    # the container's first process as ambient capabilities: they must not survive the switch).
    status = hub.execute("rooty", "print(open('/proc/self/status').read())")
    assert effective_capabilities(status) == 0
    hub.stop("rooty")


def test_grant_sudo_works_and_is_the_only_case_without_no_new_privileges(hub: Hub) -> None:
    hub.spawn("sudoer")
    host = hub.container("sudoer").attrs["HostConfig"]
    assert not host["SecurityOpt"]
    code = "import subprocess; print(subprocess.run(['sudo', '-n', 'id', '-u'], "
    code += "capture_output=True, text=True).stdout)"
    assert hub.execute("sudoer", code).strip() == "0"
    hub.stop("sudoer")
