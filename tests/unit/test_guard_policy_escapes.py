"""The engine guard's policy, continued: a container create (or exec) that tries to leave the
sandbox is refused, however its body is spelt.

Every refusal is an attack the hub could make with the raw engine socket it had before the
guard.
"""

from __future__ import annotations

from typing import Any

import docker
import pytest
from guard_policy_cases import (
    CID,
    IDENTITY,
    LIMITS,
    OURS,
    PREFIX,
    raw_create,
    refusal,
    volume_facts,
    with_host_config,
)
from guard_requests import create_container, sent

from berth.guard.policy import Found, Ref, needs
from berth.spawner.volumes import volume_create_kwargs

# -- container create: every escape from the sandbox is refused -------------------------------


@pytest.mark.parametrize(
    ("host_config", "reason"),
    [
        ({"privileged": True}, "privileged containers are not allowed"),
        ({"cap_add": ["SYS_ADMIN"]}, "capabilities SYS_ADMIN are not allowed (CapAdd)"),
        ({"cap_add": ["CAP_SYS_PTRACE"]}, "capabilities SYS_PTRACE are not allowed (CapAdd)"),
        ({"cap_add": ["ALL"]}, "capabilities ALL are not allowed (CapAdd)"),
        # dockerd would connect from the host's network to an address the hub names.
        (
            {"log_config": {"type": "syslog", "config": {"syslog-address": "tcp://10.0.0.1:514"}}},
            "log driver 'syslog' is not allowed",
        ),
        (
            {"port_bindings": {8888: ("0.0.0.0", 8888)}},
            "port 8888/tcp may be published on loopback only, not '0.0.0.0'",
        ),
        ({"publish_all_ports": True}, "PublishAllPorts is not allowed"),
        # "shocker": with it, seccomp allows open_by_handle_at and the host's files are open.
        # Fails before this change (the volume-init container's caps included it).
        (
            {"cap_add": ["DAC_READ_SEARCH", "DAC_OVERRIDE"]},
            "capabilities DAC_READ_SEARCH are not allowed (CapAdd)",
        ),
        (
            {"cap_drop": []},
            "containers must drop all capabilities (CapDrop [ALL]) and add back few",
        ),
        ({"network_mode": "host"}, "network mode 'host' shares a namespace outside the container"),
        (
            {"network_mode": "container:berth-hub"},
            "network mode 'container:berth-hub' shares a namespace outside the container",
        ),
        ({"network_mode": "corp-db"}, "network 'corp-db' is not one the hub may use"),
        (
            {"pid_mode": "host"},
            "pidmode 'host' is not allowed (only the container's own namespace)",
        ),
        (
            {"pid_mode": "container:berth-hub"},
            "pidmode 'container:berth-hub' is not allowed (only the container's own namespace)",
        ),
        (
            {"ipc_mode": "host"},
            "ipcmode 'host' is not allowed (only the container's own namespace)",
        ),
        (
            {"uts_mode": "host"},
            "utsmode 'host' is not allowed (only the container's own namespace)",
        ),
        (
            {"userns_mode": "host"},
            "usernsmode 'host' is not allowed (only the container's own namespace)",
        ),
        (
            {"cgroupns": "host"},
            "cgroupnsmode 'host' is not allowed (only the container's own namespace)",
        ),
        ({"devices": ["/dev/sda:/dev/sda:rwm"]}, "Devices (host devices) is not allowed"),
        (
            {"device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]},
            "DeviceRequests (host devices) is not allowed",
        ),
        ({"device_cgroup_rules": ["c *:* rmw"]}, "DeviceCgroupRules is not allowed"),
        (
            {"security_opt": ["seccomp=unconfined"]},
            "security option 'seccomp=unconfined' is not allowed",
        ),
        (
            {"security_opt": ["apparmor=unconfined"]},
            "security option 'apparmor=unconfined' is not allowed",
        ),
        (
            {"security_opt": ["systempaths=unconfined"]},
            "security option 'systempaths=unconfined' is not allowed",
        ),
        ({"security_opt": ["label=disable"]}, "security option 'label=disable' is not allowed"),
        ({"cgroup_parent": "/"}, "CgroupParent is not allowed"),
        ({"sysctls": {"kernel.shm_rmid_forced": "1"}}, "Sysctls is not allowed"),
        ({"volume_driver": "evil"}, "VolumeDriver is not allowed"),
        ({"volumes_from": ["berth-hub"]}, "VolumesFrom is not allowed"),
        ({"links": {"berth-hub": "hub"}}, "Links is not allowed"),
        ({"runtime": "nvidia"}, "runtime 'nvidia' is not allowed"),
        (
            {"binds": {"/": {"bind": "/host", "mode": "rw"}}},
            "bind mount of host path '/' is not allowed",
        ),
        (
            {"binds": {"/etc": {"bind": "/host-etc", "mode": "ro"}}},
            "bind mount of host path '/etc' is not allowed",
        ),
        (
            {"binds": ["/var/run/docker.sock:/var/run/docker.sock"]},
            "bind mount of host path '/var/run/docker.sock' is not allowed",
        ),
        (
            {"binds": ["/srv/berth-shared/../../etc:/x"]},
            "bind mount of host path '/srv/berth-shared/../../etc' is not allowed",
        ),
        (
            {"binds": ["/srv/berth-shared-not:/x"]},
            "bind mount of host path '/srv/berth-shared-not' is not allowed",
        ),
        (
            {"mounts": [docker.types.Mount("/x", "/", type="bind")]},
            "bind mount of host path '/' is not allowed",
        ),
        (
            {
                "mounts": [
                    docker.types.Mount(
                        "/x", "v", driver_config=docker.types.DriverConfig("local", {"o": "bind"})
                    )
                ]
            },
            "volume mounts with a DriverConfig are not allowed",
        ),
        (
            {"mounts": [docker.types.Mount("/x", "pipe", type="npipe")]},
            "mounts of type 'npipe' are not allowed",
        ),
    ],
)
def test_container_escapes_are_refused(host_config: dict[str, Any], reason: str) -> None:
    assert refusal(with_host_config(**host_config)) == reason


def test_a_named_volume_that_is_not_berths_or_missing_is_refused() -> None:
    request = with_host_config(binds={"postgres-data": {"bind": "/data", "mode": "rw"}})
    assert needs(request, LIMITS) == (Ref("volume", "postgres-data"),)
    assert refusal(request, volume_facts("postgres-data", labels={})) == (
        "volume 'postgres-data' is not Berth's (it lacks the labels berth.managed=true, "
        f"berth.prefix={PREFIX})"
    )
    assert refusal(request, {Ref("volume", "postgres-data"): None}) == (
        "volume 'postgres-data' does not exist"
    )


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (None, f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}"),
        (
            {"berth.managed": "true"},
            f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}",
        ),
        (
            {"berth.managed": "true", "berth.prefix": "berth-other"},
            f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}",
        ),
    ],
)
def test_unlabelled_or_other_deployments_containers_are_refused(
    labels: dict[str, str] | None, reason: str
) -> None:
    request = create_container(
        {"image": "alpine", "labels": labels, "host_config": {"cap_drop": ["ALL"]}}
    )
    assert refusal(request) == reason


@pytest.mark.parametrize("key", ["berth.deploy.role", "Berth.Deploy.Stack"])
def test_a_container_labelled_as_one_of_the_deployments_own_is_refused(key: str) -> None:
    """`berth down` finds the hub, proxy, guard … by berth.deploy.role: a hub that labelled a
    user's container so would have it taken for one of them (allowed before this change)."""
    request = create_container(
        {"image": "alpine", "labels": {**OURS, key: "hub"}, "host_config": {"cap_drop": ["ALL"]}}
    )
    assert refusal(request) == "a user's container carries no berth.deploy.* label"


def test_endpoints_config_networks_are_checked_too() -> None:
    request = sent(
        lambda api: api.create_container(
            "alpine",
            labels=OURS,
            host_config=api.create_host_config(cap_drop=["ALL"], network_mode="berth-net"),
            networking_config=api.create_networking_config(
                {"berth-net": api.create_endpoint_config(), "corp-db": api.create_endpoint_config()}
            ),
        )
    )
    assert refusal(request) == "network 'corp-db' is not one the hub may use"


def test_runtime_annotations_are_refused() -> None:
    body = {
        "Image": "a",
        "Labels": OURS,
        "HostConfig": {"CapDrop": ["ALL"], "Annotations": {"x": "y"}},
    }
    assert refusal(raw_create(body)) == "Annotations is not allowed"


def test_go_style_case_insensitive_keys_cannot_sneak_past() -> None:
    """The engine's JSON decoder matches keys case-insensitively: lower case must not pass."""
    body = {
        "Image": "alpine",
        "Labels": OURS,
        "HostConfig": {"CapDrop": ["ALL"], "privileged": True},
    }
    assert refusal(raw_create(body)) == "privileged containers are not allowed"
    body = {
        "Image": "alpine",
        "Labels": OURS,
        "hostconfig": {"CapDrop": ["ALL"], "PIDMODE": "host"},
    }
    assert refusal(raw_create(body)) == (
        "pidmode 'host' is not allowed (only the container's own namespace)"
    )
    twice = {
        "Image": "alpine",
        "Labels": OURS,
        "HostConfig": {"Privileged": False, "privileged": True},
    }
    assert refusal(raw_create(twice)) == "HostConfig sets 'privileged' twice (in two spellings)"


def test_duplicate_keys_and_bad_json_are_refused() -> None:
    dup = b'{"Image":"a","Labels":{},"HostConfig":{"Privileged":false,"Privileged":true}}'
    assert refusal(raw_create(dup)) == "JSON key 'Privileged' given twice"
    assert refusal(raw_create(b"{nope")).startswith("request body is not valid JSON")
    assert refusal(raw_create(b"")) == (
        f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}"
    )


def test_a_privileged_exec_is_refused() -> None:
    request = sent(lambda api: api.exec_create(f"{PREFIX}-ada", ["sh"], privileged=True))
    assert refusal(request, {Ref("container", f"{PREFIX}-ada"): Found(CID, OURS)}) == (
        "privileged exec is not allowed"
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"labels": None},
            f"volumes must carry the labels berth.managed=true and berth.prefix={PREFIX}",
        ),
        (
            {"driver_opts": {"type": "none", "o": "bind", "device": "/etc"}},
            "volume DriverOpts are not allowed",
        ),
        ({"driver": "sshfs"}, "volume driver 'sshfs' is not allowed"),
    ],
)
def test_volume_create_refusals(kwargs: dict[str, Any], reason: str) -> None:
    args = {**volume_create_kwargs(f"{PREFIX}-ada", IDENTITY), **kwargs}
    assert refusal(sent(lambda api: api.create_volume(**args))) == reason
