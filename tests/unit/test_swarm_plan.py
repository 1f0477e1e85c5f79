"""`berth up` on a Swarm, pure planning: each service's spec whole, secrets, images, refusals."""

import hashlib

import pytest

from berth.config.load import config_from_data
from berth.deploy.swarm_plan import SwarmFacts, plan_swarm, registry_name, with_ids
from berth.errors import BerthError

FACTS = SwarmFacts(
    hub_image="berth/hub:latest",
    hub_image_id="sha256:hub",
    registry_image="berth/registry:latest",
    registry_image_id="sha256:reg",
    manager_node_id="node1",
    registry="mgr:5000",
    socket_gid=998,
    tls_names=["mgr", "127.0.0.1"],
)
BASE = {"backend": "swarm"}


def plan(data: dict | None = None, facts: SwarmFacts = FACTS):
    return plan_swarm(config_from_data({**BASE, **(data or {})}), facts)


def health(check: str) -> dict:
    return {
        "Test": ["CMD", "python3", "-m", "berth.deploy.hubcheck", check],
        "Interval": 5_000_000_000,
        "Timeout": 10_000_000_000,
        "Retries": 3,
        "StartPeriod": 10_000_000_000,
    }


def without_labels(kwargs: dict) -> dict:
    return {key: value for key, value in kwargs.items() if key != "labels"}


PINNED = {"Constraints": ["node.id==node1"]}
RESTART = {"Condition": "any", "Delay": 5_000_000_000}


def test_the_hub_is_a_service_on_the_manager_with_its_secrets_and_config_from_the_swarm():
    p = plan({"services": [{"name": "ci", "token": "t" * 32, "scopes": ["list:users"]}]})
    config = p.configs[0]
    secret = p.secrets[0]
    assert secret.data == b"t" * 32 and secret.target == "service-ci.token" and secret.mode == 0o400
    digest = hashlib.sha256(b"t" * 32).hexdigest()[:16]
    assert secret.name == f"berth-secret-service-ci-{digest}"
    assert without_labels(p.hub.create_kwargs) == {
        "name": "berth-hub",
        "mode": {"Replicated": {"Replicas": 1}},
        "endpoint_spec": {"Mode": "dnsrr"},
        "task_template": {
            "ContainerSpec": {
                "CapabilityDrop": ["ALL"],
                "StopGracePeriod": 15_000_000_000,
                "Image": "berth/hub:latest",
                "Hostname": "berth-hub",
                "Env": ["BERTH_TLS_SELF_SIGNED=mgr,127.0.0.1"],
                "Mounts": [
                    {"Type": "volume", "Source": "berth-hub-data",
                     "Target": "/srv/berth/data", "ReadOnly": False},
                    {"Type": "volume", "Source": "berth-hub-data-proxy",
                     "Target": "/srv/berth/proxy", "ReadOnly": False},
                    # The engine guard's socket: no socket of the manager, not its group.
                    {"Type": "volume", "Source": "berth-hub-data-engine",
                     "Target": "/run/berth-engine", "ReadOnly": True},
                ],
                "Secrets": [{
                    "SecretName": secret.name,
                    "File": {"Name": "service-ci.token", "UID": "1000", "GID": "100",
                             "Mode": 0o400},
                }],
                "Configs": [{
                    "ConfigName": config.name,
                    "File": {"Name": "/srv/berth/config/jupyterhub_config.py",
                             "UID": "1000", "GID": "100", "Mode": 0o444},
                }],
                "HealthCheck": health("hub"),
            },
            "Placement": PINNED,
            "RestartPolicy": RESTART,
            "Networks": [{"Target": "berth"}],
        },
    }  # fmt: skip
    assert p.hub.create_kwargs["labels"] == {
        "berth.deploy.stack": "swarm",
        "berth.deploy.role": "hub",
        "berth.deploy.fingerprint": p.hub.fingerprint,
    }
    # Secrets reach the config as files in /run/secrets, never as values.
    assert "/run/secrets/service-ci.token" in p.config_py and "t" * 32 not in p.config_py


def test_the_proxy_publishes_the_port_in_host_mode_and_has_no_engine():
    p = plan({"listen": {"port": 9443}})
    assert without_labels(p.proxy.create_kwargs) == {
        "name": "berth-proxy",
        "mode": {"Replicated": {"Replicas": 1}},
        "endpoint_spec": {
            "Mode": "dnsrr",
            "Ports": [{"Protocol": "tcp", "TargetPort": 8443, "PublishedPort": 9443,
                       "PublishMode": "host"}],
        },
        "task_template": {
            "ContainerSpec": {
                "CapabilityDrop": ["ALL"],
                "StopGracePeriod": 15_000_000_000,
                "Image": "berth/hub:latest",
                "Hostname": "berth-proxy",
                "Command": ["python3", "-m", "berth.deploy.proxyinit", "--api-ip", "0.0.0.0",
                            "--hub-url", "http://berth-hub:8081"],
                "Env": ["BERTH_PROXY_DIR=/srv/berth/proxy"],
                "Mounts": [{"Type": "volume", "Source": "berth-hub-data-proxy",
                            "Target": "/srv/berth/proxy", "ReadOnly": True}],
                "ReadOnly": True,
                "HealthCheck": health("proxy"),
            },
            "Placement": PINNED,
            "RestartPolicy": RESTART,
            "Networks": [{"Target": "berth"}],
        },
    }  # fmt: skip


def test_the_registry_runs_on_the_manager_and_the_notebook_images_are_pushed_to_it():
    p = plan({"images": {"default": "berth/base-notebook:latest",
                         "allowed": ["berth/base-notebook:latest", "berth/scipy-notebook:latest",
                                     "quay.io/x/y:1"]}})  # fmt: skip
    assert without_labels(p.registry.create_kwargs) == {
        "name": "berth-registry",
        "mode": {"Replicated": {"Replicas": 1}},
        "endpoint_spec": {
            "Mode": "dnsrr",
            "Ports": [{"Protocol": "tcp", "TargetPort": 5000, "PublishedPort": 5000,
                       "PublishMode": "host"}],
        },
        "task_template": {
            "ContainerSpec": {
                "CapabilityDrop": ["ALL"],
                "StopGracePeriod": 15_000_000_000,
                "Image": "berth/registry:latest",
                "Hostname": "berth-registry",
                "Mounts": [{"Type": "volume", "Source": "berth-hub-data-registry",
                            "Target": "/var/lib/docker-registry", "ReadOnly": False}],
            },
            "Placement": PINNED,
            "RestartPolicy": RESTART,
            "Networks": [],
        },
    }  # fmt: skip
    assert p.pushes == (
        ("berth/base-notebook:latest", "mgr:5000/berth/base-notebook:latest"),
        ("berth/scipy-notebook:latest", "mgr:5000/berth/scipy-notebook:latest"),
        ("berth/hub:latest", "mgr:5000/berth/hub:latest"),  # for berth-fence on every node
    )
    assert "c.SwarmSpawner.image = 'mgr:5000/berth/base-notebook:latest'" in p.config_py
    assert "'quay.io/x/y:1'" in p.config_py and "'mgr:5000/berth/scipy" in p.config_py


def test_the_engine_guard_is_the_only_service_with_the_managers_socket():
    """Fails on main, where the hub itself had the socket (and there was no guard service)."""
    p = plan({
        "images": {"default": "berth/base-notebook:latest",
                   "allowed": ["berth/base-notebook:latest", "quay.io/x/y:1"]},
        "storage": {"volume_name_template": "lab-{username}"},
        "limits": {"memory": "1G", "pids": 200, "cpu": 0.3},
    })  # fmt: skip
    assert [s.name for s in p.services] == [
        "berth-registry", "berth-engine-guard", "berth-hub", "berth-proxy"
    ]  # fmt: skip
    assert without_labels(p.guard.create_kwargs) == {
        "name": "berth-engine-guard",
        "mode": {"Replicated": {"Replicas": 1}},
        "endpoint_spec": {"Mode": "dnsrr"},
        "task_template": {
            "ContainerSpec": {
                "CapabilityDrop": ["ALL"],
                "StopGracePeriod": 15_000_000_000,
                "Image": "berth/hub:latest",
                "Hostname": "berth-engine-guard",
                "Command": [
                    "python3", "-m", "berth.guard", "--swarm",
                    "--socket", "/run/berth-engine/docker.sock",
                    "--upstream", "unix:///var/run/docker.sock",
                    "--prefix", "berth", "--network", "berth",
                    "--volume-template", "lab-{username}",
                    "--image", "mgr:5000/berth/base-notebook:latest",
                    "--image", "quay.io/x/y:1",
                    "--max-memory", str(2**30), "--max-cpus", "0.3", "--max-pids", "200",
                    "--reserved-name", "berth-registry",
                    "--reserved-name", "berth-engine-guard",
                    "--reserved-name", "berth-hub",
                    "--reserved-name", "berth-proxy",
                    "--reserved-name", "berth-fence",
                ],
                "Groups": ["998"],
                "Mounts": [
                    {"Type": "bind", "Source": "/var/run/docker.sock",
                     "Target": "/var/run/docker.sock"},
                    {"Type": "volume", "Source": "berth-hub-data-engine",
                     "Target": "/run/berth-engine"},
                ],
                "ReadOnly": True,
                "HealthCheck": health("engine"),
            },
            "Placement": PINNED,
            "RestartPolicy": RESTART,
            "Networks": [],
        },
    }  # fmt: skip
    assert p.volumes["berth-hub-data-engine"] == {"berth.role": "engine-socket"}
    for service in (p.hub, p.proxy, p.registry):
        assert "docker.sock" not in str(service.create_kwargs["task_template"]["ContainerSpec"])
        assert "Groups" not in service.create_kwargs["task_template"]["ContainerSpec"]


def test_the_hub_config_uses_the_swarm_spawner_on_the_overlay_and_names_services():
    text = plan().config_py
    for line in (
        "c.JupyterHub.spawner_class = 'berth-swarm'",
        "c.SwarmSpawner.network_name = 'berth'",
        "c.SwarmSpawner.prefix = 'berth'",
        "c.SwarmSpawner.docker_url = 'unix:///run/berth-engine/docker.sock'",
        "c.ConfigurableHTTPProxy.api_url = 'http://berth-proxy:8001'",
        "c.JupyterHub.hub_connect_ip = 'berth-hub'",
        "c.JupyterHub.cookie_secret_file = '/srv/berth/data/secrets/cookie_secret'",
    ):
        assert line in text.splitlines(), line
    assert "ContainerSpawner" not in text


def test_the_network_is_an_attachable_overlay():
    assert plan({"network": "lab"}).network == {
        "name": "lab",
        "driver": "overlay",
        "attachable": True,
        "scope": "swarm",
        "labels": {"berth.deploy.stack": "swarm", "berth.deploy.role": "network"},
    }


def test_an_unchanged_config_plans_the_same_services_and_a_changed_one_only_what_changed():
    one, two = plan(), plan()
    assert [s.fingerprint for s in one.services] == [s.fingerprint for s in two.services]
    assert [s.name for s in one.configs] == [s.name for s in two.configs]
    memory = plan({"limits": {"memory": "1G"}})
    assert memory.hub.fingerprint != one.hub.fingerprint
    assert memory.proxy.fingerprint == one.proxy.fingerprint
    assert memory.registry.fingerprint == one.registry.fingerprint
    port = plan({"listen": {"port": 9000}})
    assert port.proxy.fingerprint != one.proxy.fingerprint
    assert port.hub.fingerprint == one.hub.fingerprint


def test_an_operator_certificate_is_a_pair_of_secrets_the_hub_copies_for_the_proxy():
    facts = SwarmFacts(**{**FACTS.__dict__, "operator_tls": (b"CERT", b"KEY")})
    p = plan(facts=facts)
    assert {(s.target, s.data) for s in p.secrets} == {
        ("tls-cert.pem", b"CERT"), ("tls-key.pem", b"KEY"),
    }  # fmt: skip
    env = p.hub.create_kwargs["task_template"]["ContainerSpec"]["Env"]
    assert env == ["BERTH_TLS_FROM=/run/secrets", "BERTH_TLS_SELF_SIGNED="]
    assert p.proxy.fingerprint != plan().proxy.fingerprint  # a new certificate: a new proxy


def test_secret_ids_are_filled_in_without_changing_the_plan():
    p = plan({"services": [{"name": "ci", "token": "t" * 32, "scopes": ["list:users"]}]})
    ids = {p.secrets[0].name: "S1", p.configs[0].name: "C1"}
    spec = with_ids(p.hub, ids)["task_template"]["ContainerSpec"]
    assert spec["Secrets"][0]["SecretID"] == "S1" and spec["Configs"][0]["ConfigID"] == "C1"
    assert "SecretID" not in p.hub.create_kwargs["task_template"]["ContainerSpec"]["Secrets"][0]


def test_a_listen_address_a_swarm_cannot_publish_on_is_refused():
    with pytest.raises(BerthError, match=r"listen\.address"):
        plan({"listen": {"address": "127.0.0.1"}})


@pytest.mark.parametrize(
    ("image", "pulled_as"),
    [
        ("berth/base-notebook:latest", "mgr:5000/berth/base-notebook:latest"),
        ("ubuntu", "mgr:5000/ubuntu"),
        ("quay.io/jupyter/base-notebook:1", "quay.io/jupyter/base-notebook:1"),
        ("reg:5000/x:1", "reg:5000/x:1"),
        ("localhost/x", "localhost/x"),
    ],
)
def test_local_image_names_move_to_the_registry_and_registry_names_stay(image, pulled_as):
    assert registry_name(image, "mgr:5000") == pulled_as


def test_status_rows_say_each_nodes_state_availability_servers_and_memory():
    from berth.deploy.swarm_status import NodeRow, current_task, node_rows

    nodes = [
        {"ID": "n2", "Description": {"Hostname": "w2", "Resources": {"MemoryBytes": 2**31}},
         "Spec": {"Role": "worker", "Availability": "drain"}, "Status": {"State": "ready"}},
        {"ID": "n1", "Description": {"Hostname": "m1", "Resources": {"MemoryBytes": 3 * 2**30}},
         "Spec": {"Role": "manager", "Availability": "active"}, "Status": {"State": "down"}},
    ]  # fmt: skip
    assert node_rows(nodes, {"n1": 2}) == [
        NodeRow("m1", "manager", "down", "active", 2, "3.0 GiB"),
        NodeRow("w2", "worker", "ready", "drain", 0, "2.0 GiB"),
    ]
    old = {"ID": "a", "DesiredState": "shutdown", "CreatedAt": "2026-01-02"}
    new = {"ID": "b", "DesiredState": "running", "CreatedAt": "2026-01-01"}
    assert current_task([old, new]) == new
    assert current_task([old]) == old
    assert current_task([]) is None


def test_secret_names_fit_the_swarms_64_characters_whatever_the_service_name():
    name = "a" * 60
    p = plan({"services": [{"name": name, "token": "t" * 32, "scopes": ["list:users"]}]})
    assert len(p.secrets[0].name) <= 64 and p.secrets[0].target == f"service-{name}.token"


def test_the_hub_copies_an_operator_certificate_from_its_secrets_for_the_proxy(tmp_path):
    from berth.deploy.hubinit import copy_operator_tls

    secrets, proxy = tmp_path / "secrets", tmp_path / "proxy"
    secrets.mkdir()
    (secrets / "tls-cert.pem").write_bytes(b"CERT")
    (secrets / "tls-key.pem").write_bytes(b"KEY")
    assert copy_operator_tls(secrets, proxy) is True
    assert (proxy / "tls" / "cert.pem").read_bytes() == b"CERT"
    assert (proxy / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600
    assert copy_operator_tls(secrets, proxy) is False  # unchanged: not written again


def test_the_fence_runs_on_every_node_from_the_registry_with_the_egress_setting():
    from berth.deploy.fence import FenceSpec, fence_service_kwargs

    p = plan({"egress": {"mode": "none", "allow": ["10.9.0.0/16"]}})
    assert p.fence is not None
    spec = FenceSpec(
        network="berth", hub="berth-hub", hub_port=8081, relays=("berth-proxy",),
        server_port=8888, egress="none", allow=("10.9.0.0/16",),
    )  # fmt: skip
    expected = fence_service_kwargs(spec, "mgr:5000/berth/hub:latest")
    expected["labels"] = {
        "berth.deploy.stack": "swarm",
        "berth.deploy.role": "fence",
        "berth.deploy.fingerprint": p.fence.fingerprint,
    }
    assert p.fence.create_kwargs == expected
    assert (
        p.fence.fingerprint
        == plan({"egress": {"mode": "none", "allow": ["10.9.0.0/16"]}}).fence.fingerprint
    )
    assert p.fence.fingerprint != plan().fence.fingerprint  # another egress: a new fence
    new_hub = SwarmFacts(**{**FACTS.__dict__, "hub_image_id": "sha256:new"})
    assert plan(facts=new_hub).fence.fingerprint != plan().fence.fingerprint


def test_the_hub_knows_each_images_command_so_it_need_not_ask_the_engine():
    """Under the engine guard the hub may not inspect images; `berth up` reads them."""
    facts = SwarmFacts(
        **{
            **FACTS.__dict__,
            "image_commands": (("berth/base-notebook:latest", ("start-notebook.py",)),),
        }
    )
    text = plan(facts=facts).config_py
    wanted = (
        "c.SwarmSpawner.image_commands = "
        "{'mgr:5000/berth/base-notebook:latest': ['start-notebook.py']}"
    )
    assert wanted in text, text
    assert "c.SwarmSpawner.image_commands = {}" in plan().config_py


def test_only_a_service_with_berths_stack_label_is_berths() -> None:
    from berth.deploy.swarm_up import is_berths

    ours = {"Spec": {"Name": "berth-hub", "Labels": {"berth.deploy.stack": "swarm"}}}
    assert is_berths(ours)
    for labels in (None, {}, {"berth.deploy.stack": "other"}, {"berth.managed": "true"}):
        assert not is_berths({"Spec": {"Name": "berth-hub", "Labels": labels}})
