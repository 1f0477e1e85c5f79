"""berth.spawner.specs and the pure parts of volumes: settings in, engine kwargs out."""

from __future__ import annotations

import docker.types
import pytest

from berth import names
from berth.spawner import specs, volumes
from berth.spawner.specs import ContainerSpec, Identity, Mount, Networking, Privileges, Resources

ALICE = Identity("Alice", "", "ContainerSpawner", "berth")


def spec(**changes: object) -> ContainerSpec:
    base: dict[str, object] = {
        "name": "berth--41lice",
        "image": "berth/base-notebook:latest",
        "identity": ALICE,
        "environment": {"JUPYTERHUB_API_TOKEN": "t"},
    }
    base.update(changes)
    return ContainerSpec(**base)  # type: ignore[arg-type]


def test_default_create_kwargs_are_locked_down() -> None:
    kwargs = specs.container_create_kwargs(spec())
    assert kwargs == {
        "image": "berth/base-notebook:latest",
        "name": "berth--41lice",
        "command": None,
        "environment": {"JUPYTERHUB_API_TOKEN": "t"},
        "labels": {
            "berth.managed": "true",
            "berth.role": "single-user",
            "berth.user": "Alice",
            "berth.server": "",
            "berth.spawner": "ContainerSpawner",
            "berth.prefix": "berth",
        },
        "ports": [8888],
        "detach": True,
        "host_config": {
            "binds": {},
            "cap_drop": ["ALL"],
            "cap_add": [],
            "security_opt": ["no-new-privileges"],
            "init": False,
            "port_bindings": {8888: ("127.0.0.1",)},
        },
        # the image's healthcheck test, run every 30 s instead of every 3 s
        "healthcheck": {"interval": 30 * 10**9, "start_period": 30 * 10**9},
    }
    assert "user" not in kwargs  # the image's own (unprivileged) USER


def test_host_config_is_accepted_by_docker_py() -> None:
    s = spec(
        mounts=[Mount("berth-alice", "/home/jovyan/work"), Mount("/srv/data", "/data", True)],
        resources=Resources(mem_limit=512 * 1024**2, cpu_limit=1.5, cpu_guarantee=0.5),
        networking=Networking(network_name="berth-net"),
    )
    hc = docker.types.HostConfig(version="1.41", **specs.host_config_kwargs(s))
    assert hc["Binds"] == ["berth-alice:/home/jovyan/work:rw,nocopy", "/srv/data:/data:ro"]
    assert hc["Memory"] == hc["MemorySwap"] == 512 * 1024**2
    assert hc["NanoCpus"] == 1_500_000_000
    assert hc["CpuShares"] == 512
    assert hc["NetworkMode"] == "berth-net"
    assert hc["PortBindings"] == {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert hc["CapDrop"] == ["ALL"]
    assert hc["SecurityOpt"] == ["no-new-privileges"]


def test_internal_ip_publishes_nothing() -> None:
    hc = specs.host_config_kwargs(
        spec(networking=Networking(network_name="n", use_internal_ip=True, port=8000))
    )
    assert "port_bindings" not in hc
    assert hc["network_mode"] == "n"


def test_extra_settings_merge_over_ours() -> None:
    gpu = docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
    kwargs = specs.container_create_kwargs(
        spec(
            extra_create_kwargs={"labels": {"course": "ml"}, "working_dir": "/srv"},
            extra_host_config={"device_requests": [gpu], "cap_add": ["NET_BIND_SERVICE"]},
        )
    )
    assert kwargs["labels"]["course"] == "ml"
    assert kwargs["labels"]["berth.user"] == "Alice"
    assert kwargs["working_dir"] == "/srv"
    assert kwargs["host_config"]["device_requests"] == [gpu]
    assert kwargs["host_config"]["cap_add"] == ["NET_BIND_SERVICE"]  # replaces, as documented


@pytest.mark.parametrize(
    ("env", "run_as_root", "expected"),
    [
        ({}, False, Privileges(user=None)),
        ({"GRANT_SUDO": "no"}, False, Privileges(user=None)),
        (
            {"NB_UID": "1010"},
            False,
            Privileges("root", ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"), True),
        ),
        (
            {},
            True,
            Privileges("root", ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"), True),
        ),
        (
            {"GRANT_SUDO": "yes"},
            False,
            Privileges(
                "root",
                (
                    "AUDIT_WRITE",
                    "CHOWN",
                    "DAC_OVERRIDE",
                    "FOWNER",
                    "FSETID",
                    "KILL",
                    "SETGID",
                    "SETUID",
                ),
                False,
            ),
        ),
    ],
)
def test_start_privileges(env: dict[str, str], run_as_root: bool, expected: Privileges) -> None:
    assert specs.start_privileges(env, run_as_root) == expected


def test_root_start_spec() -> None:
    env = {"NB_UID": "1010", "GRANT_SUDO": "1"}
    kwargs = specs.container_create_kwargs(spec(privileges=specs.start_privileges(env)))
    assert kwargs["user"] == "root"
    assert kwargs["host_config"]["security_opt"] == []
    assert "SETUID" in kwargs["host_config"]["cap_add"]


def test_mounts_from_config_templates_and_modes() -> None:
    ns = names.template_namespace("berth", "Alice", "gpu")
    mounts = specs.mounts_from_config(
        {
            "{prefix}-{username}": "/home/jovyan/work",
            "{prefix}-{username}{server_suffix}-scratch": {"bind": "/scratch", "mode": "ro"},
            "/srv/homes/{username}": "/home/jovyan/host",
        },
        {"berth-shared": "/home/jovyan/shared"},
        ns,
    )
    assert mounts == [
        Mount("berth--41lice", "/home/jovyan/work", False, per_user=True),
        Mount("berth--41lice_gpu-scratch", "/scratch", True, per_user=True),
        Mount("/srv/homes/-41lice", "/home/jovyan/host", False, per_user=True),
        Mount("berth-shared", "/home/jovyan/shared", True, per_user=False),
    ]
    assert mounts[2].is_host_path and not mounts[0].is_host_path


@pytest.mark.parametrize(
    "volumes",
    [{"{username}": "/w"}, {"{nope}": "/w"}, {"v": "relative/path"}],
)
def test_mounts_from_config_rejects_bad_names(volumes: dict[str, str]) -> None:
    ns = names.template_namespace("berth", "Alice")
    with pytest.raises(names.InvalidNameError):
        specs.mounts_from_config(volumes, {}, ns)


def test_owned_by() -> None:
    mine = specs.labels(ALICE)
    assert specs.owned_by(mine, ALICE)
    assert not specs.owned_by(mine, Identity("alice"))
    assert not specs.owned_by(mine, Identity("Alice", "gpu"))
    assert not specs.owned_by({}, ALICE)
    assert not specs.owned_by(None, ALICE)


@pytest.mark.parametrize(
    ("image_user", "env", "privileges", "owner"),
    [
        ("1000", {}, Privileges(None), "1000"),
        ("jovyan", {}, Privileges(None), "jovyan"),
        ("1000:100", {}, Privileges(None), "1000:100"),
        ("", {}, Privileges(None), ""),
        ("root", {}, Privileges(None), ""),
        ("1000", {"NB_UID": "1010"}, Privileges("root"), "1010:100"),
        ("1000", {"NB_UID": "1010", "NB_GID": "1020"}, Privileges("root"), "1010:1020"),
    ],
)
def test_volume_owner(
    image_user: str, env: dict[str, str], privileges: Privileges, owner: str
) -> None:
    assert volumes.volume_owner(image_user, env, privileges) == owner


def test_volume_init_container_is_minimal() -> None:
    kwargs = volumes.volume_init_kwargs("img", "berth-alice", "/home/jovyan/work", "1000", ALICE)
    assert kwargs["user"] == "root"
    assert kwargs["network_disabled"] is True
    assert kwargs["command"] == ["/home/jovyan/work", "1000"]
    assert kwargs["entrypoint"][:2] == ["/bin/sh", "-c"]
    assert kwargs["labels"]["berth.role"] == "volume-init"
    hc = kwargs["host_config"]
    assert hc["cap_drop"] == ["ALL"] and hc["cap_add"] == ["CHOWN", "DAC_OVERRIDE"]
    assert hc["security_opt"] == ["no-new-privileges"]
    assert hc["network_mode"] == "none"
    assert hc["binds"] == {"berth-alice": {"bind": "/home/jovyan/work", "mode": "rw"}}
    docker.types.HostConfig(version="1.41", **hc)


def test_volume_init_without_owner_only_lets_docker_copy() -> None:
    kwargs = volumes.volume_init_kwargs("img", "v", "/t", "", ALICE)
    assert kwargs["command"] == ["/t", ""]
    assert '[ -n "$owner" ] || exit 0' in kwargs["entrypoint"][2]


def test_volume_create_kwargs() -> None:
    kwargs = volumes.volume_create_kwargs("berth-alice", ALICE)
    assert kwargs["name"] == "berth-alice"
    assert kwargs["labels"]["berth.role"] == "volume"
    assert kwargs["labels"]["berth.user"] == "Alice"


def test_a_template_with_only_server_fields_is_someones_volume() -> None:
    """`{prefix}-data{server_suffix}` renders one name for alice's and bob's server "proj";
    before this change it counted as shared, so bob mounted alice's labelled volume."""
    ns = names.template_namespace("berth", "bob", "proj")
    mounts = specs.mounts_from_config({"{prefix}-data{server_suffix}": "/data"}, {}, ns)
    assert mounts == [Mount("berth-data_proj", "/data", False, per_user=True)]
