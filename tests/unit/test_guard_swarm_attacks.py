"""The engine guard on a Swarm manager: a hostile hub's service specs (binds, other volumes,
host network, published ports, capabilities, secrets, limits, Berth's own names and labels …),
each refused with its reason. Pure functions on the requests docker-py sends; each fails on
main, where the hub held the manager's socket and ``berth.guard.services`` did not exist.
"""

from __future__ import annotations

from typing import Any

import pytest
from swarm_guard_cases import (
    OURS,
    PREFIX,
    container,
    create,
    edited,
    refusal,
    service_spec,
)

from berth.guard.policy import Found, Ref
from berth.spawner import specs

# -- what a hostile hub might try is refused ---------------------------------------------------


def test_a_service_bind_mounting_the_nodes_root_is_refused() -> None:
    def bind_root(body: dict[str, Any]) -> None:
        container(body)["Mounts"] = [{"Type": "bind", "Source": "/", "Target": "/host"}]

    assert refusal(edited(bind_root)) == (
        "mounts of type 'bind' are not allowed (only the user's volumes)"
    )
    host_path = specs.Mount("/", "/host")  # the builder's own bind, from a host-path template
    assert "'bind' are not allowed" in refusal(create(service_spec(mounts=(host_path,))))


@pytest.mark.parametrize(
    ("mount", "reason"),
    [
        ({"Type": "tmpfs", "Target": "/x"}, "mounts of type 'tmpfs' are not allowed"),
        ({"type": "BIND", "Source": "/", "Target": "/h"}, "mounts of type 'BIND' are not allowed"),
        ({"Type": "npipe", "Source": "x", "Target": "/h"}, "mounts of type 'npipe'"),
        ({"Target": "/h", "Source": "berth-user-ada"}, "mounts of type None are not allowed"),
        (
            {"Type": "volume", "Source": "berth-user-ada", "Target": "/h",
             "BindOptions": {"Propagation": "rshared"}},
            "Mounts entry field(s) bindoptions are not allowed",
        ),
        (
            {"Type": "volume", "Source": "berth-user-bob", "Target": "/h",
             "VolumeOptions": {"Labels": OURS}},
            "volume 'berth-user-bob' is not one of this user's volumes (berth-user-ada)",
        ),
        (
            {"Type": "volume", "Source": "berth-hub-data", "Target": "/h",
             "VolumeOptions": {"Labels": OURS}},
            "volume 'berth-hub-data' is not one of this user's volumes (berth-user-ada)",
        ),
        (
            {"Type": "volume", "Source": "berth-user-ada", "Target": "/h",
             "VolumeOptions": {"Labels": {**OURS, "berth.user": "bob"}}},
            "volume 'berth-user-ada' is labelled for another user",
        ),
        (
            {"Type": "volume", "Source": "berth-user-ada", "Target": "/h"},
            "volumes must carry the labels berth.managed=true and berth.prefix=berth",
        ),
        (
            {"Type": "volume", "Source": "berth-user-ada", "Target": "/h", "VolumeOptions": {
                "Labels": OURS, "DriverConfig": {"Name": "local", "Options": {
                    "type": "none", "o": "bind", "device": "/"}}}},
            "a volume's DriverConfig must be the configured driver and options",
        ),
    ],
)  # fmt: skip
def test_mounts_other_than_the_users_own_volumes_are_refused(
    mount: dict[str, Any], reason: str
) -> None:
    def replace(body: dict[str, Any]) -> None:
        container(body)["Mounts"] = [mount]

    assert reason in refusal(edited(replace))


def test_a_volume_the_manager_holds_for_the_hub_or_another_user_is_refused() -> None:
    """The hub's data volume (database, cookie secret, tokens) is on the manager; a user named
    to match it (template berth-{username}, user "hub-data") must not mount it."""
    spec = service_spec(mounts=(specs.Mount("berth-user-ada", "/home/jovyan/work"),))
    volume = Ref("swarm-volume", "berth-user-ada", owner="ada")
    hub_data = Found("berth-user-ada", {"berth.managed": "true", "berth.role": "hub-data"})
    assert refusal(create(spec), {volume: hub_data}) == (
        "volume 'berth-user-ada' exists on the manager and is not Berth's (it lacks the labels "
        "berth.managed=true, berth.prefix=berth)"
    )
    bobs = Found("berth-user-ada", specs.labels(specs.Identity("bob", prefix=PREFIX), "volume"))
    assert (
        refusal(create(spec), {volume: bobs}) == "volume 'berth-user-ada' belongs to another user"
    )


def other_deployment(body: dict[str, Any]) -> None:
    body["Labels"]["berth.prefix"] = "other"


def host_network(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Networks"] = [{"Target": "host"}]


def published(body: dict[str, Any]) -> None:
    body["EndpointSpec"] = {"Ports": [{"TargetPort": 22, "PublishedPort": 2222}]}


def global_mode(body: dict[str, Any]) -> None:
    body["Mode"] = {"Global": {}}


def add_caps(body: dict[str, Any]) -> None:
    container(body)["CapabilityAdd"] = ["CAP_SYS_ADMIN"]


def keep_caps(body: dict[str, Any]) -> None:
    container(body)["CapabilityDrop"] = []


def secret(body: dict[str, Any]) -> None:
    container(body)["Secrets"] = [{"SecretID": "x", "SecretName": "berth-secret-db", "File": {}}]


def privileges(body: dict[str, Any]) -> None:
    container(body)["Privileges"] = {"SELinuxContext": {"Disable": True}}


def sysctls(body: dict[str, Any]) -> None:
    container(body)["sysctls"] = {"net.ipv4.ip_forward": "1"}


def user(body: dict[str, Any]) -> None:
    container(body)["User"] = "0:0"


def image(body: dict[str, Any]) -> None:
    container(body)["Image"] = "docker.io/library/debian:12"


def no_limits(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Resources"] = {}


def more_memory(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] = 64 * 1024**3


def reserve_all(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Resources"]["Reservations"] = {"MemoryBytes": 64 * 1024**3}


def on_the_manager(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Placement"]["Constraints"] = ["node.role==manager"]


def log_driver(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["LogDriver"] = {"Name": "syslog", "Options": {"syslog-address": "x"}}


def runtime(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Runtime"] = "plugin"


def hub_name(body: dict[str, Any]) -> None:
    body["Name"] = "berth-proxy"


def deploy_role(body: dict[str, Any]) -> None:
    body["Labels"]["berth.deploy.role"] = "hub"


def stack(body: dict[str, Any]) -> None:
    body["Labels"]["berth.deploy.stack"] = "swarm"


def role(body: dict[str, Any]) -> None:
    body["Labels"]["berth.role"] = "volume"  # out of reach of `berth down`'s clean-up


def two_users(body: dict[str, Any]) -> None:
    container(body)["Labels"]["berth.user"] = "bob"


def two_spellings(body: dict[str, Any]) -> None:
    container(body)["capabilityadd"] = ["SYS_ADMIN"]


def old_networks(body: dict[str, Any]) -> None:
    body["Networks"] = [{"Target": "host"}]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (other_deployment, "a user's services must carry the labels berth.managed=true and "
         "berth.prefix=berth"),
        (host_network, "network 'host' is not one the hub may use"),
        (published, "a user's service publishes no ports"),
        (global_mode, "Mode field(s) global are not allowed"),
        (add_caps, "capabilities SYS_ADMIN are not allowed (CapabilityAdd)"),
        (keep_caps, "a user's service must drop all capabilities (CapabilityDrop [ALL])"),
        (secret, "ContainerSpec field(s) secrets are not allowed"),
        (privileges, "ContainerSpec field(s) privileges are not allowed"),
        (sysctls, "ContainerSpec field(s) sysctls are not allowed"),
        (user, "user '0:0' is not allowed (the image's, or root to start)"),
        (image, "image 'docker.io/library/debian:12' is not one of the allowed images"),
        (no_limits, "the memory limit must be set and at most 2147483648 bytes"),
        (more_memory, "the memory limit must be set and at most 2147483648 bytes"),
        (reserve_all, "the memory reservation is above the memory limit"),
        (on_the_manager, "the placement constraint(s) node.role==worker must stay"),
        (log_driver, "TaskTemplate field(s) logdriver are not allowed"),
        (runtime, "TaskTemplate field(s) runtime are not allowed"),
        (hub_name, "the service name 'berth-proxy' is not one a user's server may take"),
        (deploy_role, "a user's service carries no berth.deploy.* label"),
        (stack, "a user's service carries no berth.deploy.* label"),
        (role, "a user's service carries the label berth.role=single-user"),
        (two_users, "the service's and its containers' labels name different users"),
        (two_spellings, "ContainerSpec sets 'capabilityadd' twice (in two spellings)"),
        (old_networks, "service spec field(s) networks are not allowed"),
    ],
)  # fmt: skip
def test_a_hostile_service_spec_is_refused(change: Any, reason: str) -> None:
    assert refusal(edited(change)) == reason
