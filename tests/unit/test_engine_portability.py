"""What the spawner makes of engine answers that differ between Docker and Podman.

Podman's Docker-compatible API reads a label filter ``key=`` as "has the label" (Docker: "has it
with the empty value"), and on cgroup v1 never sets ``State.OOMKilled``; see docs/podman.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from berth.deploy.containerplan import NetworkPlan
from berth.deploy.network import network_addresses, network_create_kwargs
from berth.deploy.up import check_network_made
from berth.engine_kind import image_names
from berth.errors import BerthError
from berth.images.osbase import imported_id
from berth.spawner import errors
from berth.spawner.engine_api import carries, label_filters

DEFAULT_SERVER = {"berth.user": "ivan", "berth.server": ""}


def test_label_filters_ask_for_every_label() -> None:
    assert label_filters(DEFAULT_SERVER) == {"label": ["berth.user=ivan", "berth.server="]}


def test_an_empty_label_value_matches_only_the_empty_value() -> None:
    # What Podman returns for the filter above: ivan's default server and his named one.
    found = [
        {"berth.user": "ivan", "berth.server": ""},
        {"berth.user": "ivan", "berth.server": "two"},
        {"berth.user": "ivan"},
        None,
    ]
    assert [carries(labels, DEFAULT_SERVER) for labels in found] == [True, False, False, False]


def failure(state: dict[str, Any], mem_limit: int | None = 256 * 1024**2) -> Any:
    record = {"Id": "c0ffee", "State": {"Status": "exited", "Error": "", **state}, "_logs": "log"}
    exc = errors.start_failure(record, mem_limit, "berth-ivan")
    return {"reason": exc.reason, "message": exc.message}


def test_an_engine_reported_oom_kill() -> None:
    assert failure({"OOMKilled": True, "ExitCode": 137}) == {
        "reason": errors.REASON_OOM,
        "message": "Your server ran out of memory (256 MiB) while starting and was stopped. "
        "Ask an administrator for a higher memory limit.",
    }


def test_a_kill_under_a_memory_limit_without_the_oom_flag() -> None:
    assert failure({"OOMKilled": False, "ExitCode": 137}) == {
        "reason": errors.REASON_OOM,
        "message": "Your server was killed while starting (status 137), most likely because it "
        "ran out of memory (256 MiB). Ask an administrator for a higher memory limit.",
    }


def test_a_kill_without_a_memory_limit_is_just_an_exit() -> None:
    assert failure({"ExitCode": 137}, mem_limit=None) == {
        "reason": errors.REASON_EXITED,
        "message": "Your server exited with status 137 while starting. "
        "An administrator can find its log in the hub's log.",
    }


def test_another_exit_status_is_not_called_memory() -> None:
    assert failure({"ExitCode": 1})["reason"] == errors.REASON_EXITED


def test_a_container_removed_meanwhile() -> None:
    exc = errors.start_failure({"State": {}}, 1024**3, "berth-ivan")
    assert "(berth-ivan) was removed while it was starting" in exc.message


class FakeNetwork:
    """A network as an engine reports it after creating it (``attrs``), and its removal."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.removed = False

    def reload(self) -> None:
        pass

    def remove(self) -> None:
        self.removed = True


def network_plan() -> NetworkPlan:
    addresses = network_addresses("10.89.0.0/24")
    kwargs = network_create_kwargs("berth-t", "berth-t", addresses.subnet)
    return NetworkPlan("berth-t", kwargs, addresses.subnet, addresses.hub, addresses.proxy)


def test_a_network_made_as_asked_is_kept() -> None:
    made = FakeNetwork(  # Docker's inspect of what network_create_kwargs asks for
        {
            "Driver": "bridge",
            "Options": {
                "com.docker.network.bridge.name": "berth-t",
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
            },
            "IPAM": {"Config": [{"Subnet": "10.89.0.0/24", "IPRange": "10.89.0.128/25"}]},
            "EnableIPv6": False,
        }
    )
    check_network_made(made, network_plan())  # type: ignore[arg-type]
    assert not made.removed


def test_a_network_made_without_isolation_is_refused_and_removed() -> None:
    """Fails on main before this change: `berth up` went on with a network whose servers reach
    one another (Podman 4.3 ignores enable_icc and the address range of user servers)."""

    made = FakeNetwork(  # what Podman 4.3's compatible API reports for the same request
        {
            "Driver": "bridge",
            "Options": {},
            "IPAM": {"Config": [{"Subnet": "10.89.0.0/24", "Gateway": "10.89.0.1"}]},
            "EnableIPv6": False,
        }
    )
    with pytest.raises(BerthError) as refused:
        check_network_made(made, network_plan())  # type: ignore[arg-type]
    assert made.removed
    assert str(refused.value).startswith(
        "the engine made the network berth-t without the isolation Berth asked for: "
        "bridge name is None, not 'berth-t'; containers on it may reach one another"
    )


@pytest.mark.parametrize(
    ("answer", "image_id"),
    [
        ('{"status":"sha256:12ab"}\r\n', "sha256:12ab"),  # Docker
        (
            '{"status":"sha256:12ab","progress":"","progressDetail":{},"id":"sha256:12ab"}\n',
            "sha256:12ab",
        ),  # Podman
        ('{"error":"no space left"}\n', ""),
        ("not json", ""),
        ("[1]", ""),
    ],
)
def test_the_id_of_an_imported_image(answer: str, image_id: str) -> None:
    assert imported_id(answer) == image_id


def test_podman_is_told_from_docker_by_its_version_components() -> None:
    from berth.engine_kind import engine_of, libpod_api_version

    podman = {"Components": [{"Name": "Podman Engine", "Details": {"APIVersion": "4.3.1"}}]}
    docker_ = {"Components": [{"Name": "Engine", "Version": "20.10.24"}]}
    assert (engine_of(podman), engine_of(docker_), engine_of({})) == ("podman", "docker", "docker")
    assert libpod_api_version(podman) == "4.3.1"
    with pytest.raises(ValueError):
        libpod_api_version(docker_)


def test_a_podman_network_is_judged_by_podmans_own_record() -> None:
    """Before this change `berth up` refused every Podman network (its compatible inspect
    reports neither the bridge name nor the range); Podman's own record shows both, and one
    without them is still refused and removed."""
    compatible = {
        "Driver": "bridge",
        "Options": {},
        "IPAM": {"Config": [{"Subnet": "10.89.0.0/24", "Gateway": "10.89.0.1"}]},
    }
    record = {
        "driver": "bridge",
        "network_interface": "berth-t",
        "subnets": [
            {
                "subnet": "10.89.0.0/24",
                "lease_range": {"start_ip": "10.89.0.129", "end_ip": "10.89.0.255"},
            }
        ],
    }
    made = FakeNetwork(compatible)
    check_network_made(made, network_plan(), record)  # type: ignore[arg-type]
    assert not made.removed
    with pytest.raises(BerthError, match="bridge name is 'podman3', not 'berth-t'"):
        check_network_made(made, network_plan(), {**record, "network_interface": "podman3"})  # type: ignore[arg-type]
    assert made.removed


def test_image_names_are_compared_as_they_were_asked_for() -> None:
    """Podman reports a committed snapshot as docker.io/<name> and a built or loaded image as
    localhost/<name>; `berth snapshot list` and the spawner's choices missed every snapshot."""
    tags = [
        "docker.io/berth-snapshot/berth/uada:v1",
        "localhost/berth/hub:latest",
        "docker.io/library/python:3",
        "berth/base-notebook:latest",
        "registry.example.org/x/y:1",
    ]
    assert image_names(tags) == {
        "berth-snapshot/berth/uada:v1",
        "berth/hub:latest",
        "python:3",
        "berth/base-notebook:latest",
        "registry.example.org/x/y:1",
    }
