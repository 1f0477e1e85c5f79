"""berth up's pure planning: each container's create arguments, fingerprints, files, changes."""

import io
import tarfile

import pytest

from berth.config.load import config_from_data
from berth.deploy.accounts import user_path
from berth.deploy.containerplan import HostFacts, files_tar
from berth.deploy.plan import config_changes, plan_deployment
from berth.deploy.up import public_url
from berth.errors import BerthError

FACTS = HostFacts(hub_image_id="sha256:abc", socket_gid=998, tls_names=["vm", "127.0.0.1"])
SECURITY = {
    "restart_policy": {"Name": "unless-stopped"},
    "security_opt": ["no-new-privileges"],
    "cap_drop": ["ALL"],
}


def plan(data: dict | None = None, facts: HostFacts = FACTS):
    return plan_deployment(config_from_data(data or {}), facts)


def healthcheck(check: str) -> dict:
    return {
        "test": ["CMD", "python3", "-m", "berth.deploy.hubcheck", check],
        "interval": 5_000_000_000,
        "timeout": 10_000_000_000,
        "retries": 3,
        "start_period": 10_000_000_000,
    }


def without_labels(kwargs: dict) -> dict:
    return {key: value for key, value in kwargs.items() if key != "labels"}


def test_the_proxy_faces_the_internet_with_no_engine_and_no_hub_data():
    proxy = plan({"listen": {"address": "127.0.0.1", "port": 9443}}).proxy
    assert without_labels(proxy.create_kwargs) == {
        "image": "sha256:abc",
        "name": "berth-proxy",
        "hostname": "berth-proxy",
        "command": [
            "python3",
            "-m",
            "berth.deploy.proxyinit",
            "--api-ip",
            "172.30.0.3",
            "--hub-url",
            "http://172.30.0.2:8081",
        ],
        "detach": True,
        "environment": {"BERTH_PROXY_DIR": "/srv/berth/proxy"},
        "ports": {"8443/tcp": ("127.0.0.1", 9443)},
        # Only the proxy volume (token, certificate), read-only: no socket, no data volume.
        "volumes": {"berth-hub-data-proxy": {"bind": "/srv/berth/proxy", "mode": "ro"}},
        "network": "berth",
        "networking_config": {"berth": {"IPAMConfig": {"IPv4Address": "172.30.0.3"}}},
        "read_only": True,
        "healthcheck": healthcheck("proxy"),
        **SECURITY,
    }
    assert proxy.files == {}


def test_the_hub_reaches_the_engine_only_through_the_guard():
    hub = plan().hub
    assert without_labels(hub.create_kwargs) == {
        "image": "sha256:abc",
        "name": "berth-hub",
        "hostname": "berth-hub",
        "detach": True,
        "environment": {
            "BERTH_TLS_SELF_SIGNED": "vm,127.0.0.1",
            "DOCKER_HOST": "unix:///run/berth-engine/docker.sock",
        },
        "volumes": {
            "berth-hub-data": {"bind": "/srv/berth/data", "mode": "rw"},
            "berth-hub-data-proxy": {"bind": "/srv/berth/proxy", "mode": "rw"},
            "berth-hub-data-engine": {"bind": "/run/berth-engine", "mode": "ro"},
        },
        "network": "berth",
        "networking_config": {"berth": {"IPAMConfig": {"IPv4Address": "172.30.0.2"}}},
        "healthcheck": healthcheck("hub"),
        **SECURITY,
    }  # no docker.sock, no socket group, no published port


def test_only_the_guard_holds_the_socket_and_it_has_no_network():
    guard = plan().guard
    assert without_labels(guard.create_kwargs) == {
        "image": "sha256:abc",
        "name": "berth-engine-guard",
        "hostname": "berth-engine-guard",
        "command": [
            "python3",
            "-m",
            "berth.guard",
            "--socket",
            "/run/berth-engine/docker.sock",
            "--upstream",
            "unix:///var/run/docker.sock",
            "--prefix",
            "berth",
            "--network",
            "berth",
        ],
        "detach": True,
        "network_mode": "none",
        "volumes": {
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            "berth-hub-data-engine": {"bind": "/run/berth-engine", "mode": "rw"},
        },
        "group_add": ["998"],
        "read_only": True,
        "healthcheck": healthcheck("engine"),
        **SECURITY,
    }


def test_the_network_has_a_fixed_subnet_and_users_get_the_upper_half():
    facts = HostFacts("sha256:abc", 998, ["vm"], subnet="172.19.0.0/16")
    net = plan({"network": "berth-x"}, facts).network
    assert net.create_kwargs == {
        "name": "berth-x",
        "driver": "bridge",
        "options": {
            "com.docker.network.bridge.name": "berth-x",
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
        },
        "ipam": {
            "Driver": "default",
            "Config": [
                {
                    "Subnet": "172.19.0.0/16",
                    "IPRange": "172.19.128.0/17",
                    "Gateway": "172.19.0.1",
                    "AuxiliaryAddresses": None,
                }
            ],
        },
        "enable_ipv6": False,
        "check_duplicate": True,
        "labels": {"berth.managed": "true", "berth.role": "network"},
    }
    assert (net.hub_ip, net.proxy_ip) == ("172.19.0.2", "172.19.0.3")


def test_the_firewall_trusts_the_hub_relays_the_proxy_and_opens_the_hub_api():
    firewall = plan().firewall.create_kwargs
    assert firewall["command"] == [
        "python3", "-m", "berth.deploy.firewall", "apply",
        "--bridge", "berth",
        "--subnet", "172.30.0.0/16",
        "--trusted", "172.30.0.2",
        "--hub-api", "172.30.0.2:8081",
        "--relays", "172.30.0.3",
        "--server-port", "8888",
        "--egress", "public",
    ]  # fmt: skip
    assert firewall["network_mode"] == "host"
    assert firewall["cap_drop"] == ["ALL"] and firewall["cap_add"] == ["NET_ADMIN"]
    assert "volumes" not in firewall  # no socket, no data


def test_egress_reaches_the_firewall_with_the_engines_resolvers():
    """berth.yaml's egress section and the host's DNS servers become the firewall's command;
    with `none` the resolvers are left out (DNS is closed, and a new resolver changes nothing)."""
    facts = HostFacts("sha256:abc", 998, ["vm"], resolvers=("10.255.255.53",))
    public = plan({"egress": {"allow": ["10.1.2.0/24"]}}, facts).firewall.create_kwargs
    assert public["command"][-6:] == [
        "--egress", "public", "--allow", "10.1.2.0/24", "--resolvers", "10.255.255.53",
    ]  # fmt: skip
    closed = plan({"egress": {"mode": "none"}}, facts).firewall.create_kwargs
    assert closed["command"][-2:] == ["--egress", "none"]
    assert changed({"egress": {"mode": "all"}}) == {"firewall"}
    assert changed({"egress": {"allow": ["10.1.2.3"]}}) == {"firewall"}
    assert changed(
        facts=HostFacts("sha256:abc", 998, ["vm", "127.0.0.1"], resolvers=("10.0.0.2",))
    ) == {"firewall"}


def test_the_hub_uses_the_external_proxy_and_rechecks_routes():
    config_py = plan().config_py
    for line in (
        "c.ConfigurableHTTPProxy.should_start = False",
        "c.ConfigurableHTTPProxy.api_url = 'http://172.30.0.3:8001'",
        "c.ConfigurableHTTPProxy.auth_token = _secret('/srv/berth/proxy/proxy_token')",
        "c.JupyterHub.last_activity_interval = 15",
        "c.ContainerSpawner.prefix = 'berth'",
    ):
        assert line in config_py.splitlines()


def test_the_same_inputs_give_the_same_fingerprints():
    first, second = plan(), plan()
    for one, two in zip(first.containers, second.containers, strict=True):
        assert one.fingerprint == two.fingerprint
        assert one.create_kwargs["labels"] == {
            "berth.deploy.role": one.role,
            "berth.deploy.fingerprint": one.fingerprint,
        }


def fingerprints(data: dict | None = None, facts: HostFacts = FACTS) -> dict[str, str]:
    return {c.role: c.fingerprint for c in plan(data, facts).containers}


def changed(data: dict | None = None, facts: HostFacts = FACTS) -> set[str]:
    base, other = fingerprints(), fingerprints(data, facts)
    return {role for role in base if base[role] != other[role]}


def test_each_change_restarts_exactly_the_containers_it_concerns():
    assert changed({"limits": {"memory": "1G"}}) == {"hub"}
    assert changed({"listen": {"port": 9443}}) == {"proxy"}
    assert changed({"hub": {"data_volume": "other-data"}}) == {"guard", "hub", "proxy"}
    assert changed(
        facts=HostFacts("sha256:abc", 998, ["vm", "127.0.0.1"], subnet="10.9.0.0/24")
    ) == {
        "firewall",
        "hub",
        "proxy",
    }
    assert changed(facts=HostFacts("sha256:abc", 999, ["vm", "127.0.0.1"])) == {"guard"}
    assert changed(facts=HostFacts("sha256:def", 998, ["vm", "127.0.0.1"])) == {
        "guard",
        "firewall",
        "hub",
        "proxy",
    }
    # A new certificate: the hub writes it, the proxy must read it again.
    assert changed(facts=HostFacts("sha256:abc", 998, ["other"])) == {"hub", "proxy"}
    operator = HostFacts("sha256:abc", 998, ["vm"], operator_tls=(b"cert", b"key"))
    renewed = HostFacts("sha256:abc", 998, ["vm"], operator_tls=(b"cert2", b"key2"))
    assert fingerprints(facts=operator)["proxy"] != fingerprints(facts=renewed)["proxy"]
    assert changed({"network": "berth-other"}) == {"guard", "firewall", "hub", "proxy"}


def test_secrets_stay_out_of_config_env_and_the_proxy():
    deployment = plan({"services": [{"name": "ci", "scopes": ["admin:users"], "token": "t" * 40}]})
    hub = deployment.hub
    assert "t" * 40 not in deployment.config_py
    for container in deployment.containers:
        assert "t" * 40 not in str(container.create_kwargs)  # environment, command, labels
    secret_files = {path: mode for path, (data, mode) in hub.files.items() if b"t" * 40 in data}
    assert secret_files == {"/srv/berth/data/secrets/service-ci.token": 0o600}
    assert all(b"t" * 40 not in data for data, _ in deployment.proxy.files.values())
    assert "berth-cli" in deployment.config_py  # the CLI's own service, in JupyterHub's admin role


def test_an_operator_certificate_goes_to_the_proxy_volume_with_mode_600():
    facts = HostFacts("sha256:abc", 998, ["vm"], operator_tls=(b"CERT", b"KEY"))
    deployment = plan(facts=facts)
    assert deployment.hub.files["/srv/berth/proxy/tls/cert.pem"] == (b"CERT", 0o600)
    assert deployment.hub.files["/srv/berth/proxy/tls/key.pem"] == (b"KEY", 0o600)
    assert deployment.hub.create_kwargs["environment"]["BERTH_TLS_SELF_SIGNED"] == ""


def test_files_tar_keeps_modes_and_gives_everything_to_the_hub_user():
    data = files_tar(
        {"/srv/berth/data/secrets/x": (b"s", 0o600), "/srv/berth/config/c.py": (b"c", 0o644)}
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["srv/berth/data/secrets/x"].mode == 0o600
    assert members["srv/berth/data/secrets"].isdir()
    assert {(m.uid, m.gid) for m in members.values()} == {(1000, 100)}
    assert "srv" not in members and "srv/berth" not in members  # the image's own dirs untouched


def test_config_changes_name_the_settings():
    old = "c.A.x = 1\nc.A.y = 2\n"
    new = "c.A.x = 1\nc.A.y = 3\nc.B.z = 4\n"
    assert config_changes(old, new) == ["A.y", "B.z"]


def test_user_names_cannot_rewrite_the_api_path():
    assert user_path("admin?") == "/users/admin%3F"
    assert user_path("a/b", "/tokens") == "/users/a%2Fb/tokens"
    assert user_path("jürgen") == "/users/j%C3%BCrgen"


def test_public_url_brackets_ipv6():
    cfg = config_from_data({"listen": {"address": "::1", "port": 8443}})
    assert public_url(cfg, FACTS) == "https://[::1]:8443/"
    cfg = config_from_data({"listen": {"address": "0.0.0.0", "port": 443}})
    assert public_url(cfg, FACTS) == "https://vm/"


@pytest.mark.parametrize("backend", ["swarm"])
def test_a_backend_berth_up_cannot_run_yet_is_refused_before_anything_changes(backend):
    with pytest.raises(BerthError, match=f"backend: '{backend}' is not available from"):
        plan({"backend": backend})


def test_on_podman_the_plan_mounts_its_socket_and_the_firewall_hooks_forward():
    """The guard and berth-backup get the socket DOCKER_HOST names (main mounted Docker's
    /var/run/docker.sock whatever the engine: on a host with both, the hub would have spawned
    on dockerd); the firewall is told the engine; user servers reach the hub by its fixed
    address (names resolve at the gateway on Podman, which egress `none` closes)."""
    import dataclasses

    podman = dataclasses.replace(
        FACTS, engine="podman", engine_socket="/run/berth-podman/podman.sock"
    )
    on_podman, on_docker = (
        plan({"backup": {"enabled": True}}, podman),
        plan({"backup": {"enabled": True}}),
    )
    for role in ("guard", "backup"):
        podman_mounts = getattr(on_podman, role).create_kwargs["volumes"]
        docker_mounts = getattr(on_docker, role).create_kwargs["volumes"]
        assert podman_mounts["/run/berth-podman/podman.sock"] == {
            "bind": "/var/run/docker.sock",
            "mode": "rw",
        }
        assert docker_mounts["/var/run/docker.sock"] == podman_mounts.pop(
            "/run/berth-podman/podman.sock"
        )
        assert "/var/run/docker.sock" not in podman_mounts
    command = on_podman.firewall.create_kwargs["command"]
    assert command[-2:] == ["--engine", "podman"]
    assert "--engine" not in on_docker.firewall.create_kwargs["command"]
    assert "c.JupyterHub.hub_connect_ip = '172.30.0.2'" in on_podman.config_py.splitlines()
    assert "c.JupyterHub.hub_connect_ip = 'berth-hub'" in on_docker.config_py.splitlines()


def test_on_podman_the_hub_and_proxy_keep_their_mac_address_with_their_address():
    """netavark gives every container a random MAC: a hub or proxy replaced at the same address
    then had a new one, and the host's neighbour table sent its traffic to the old one for most
    of a minute (the published port took no connection after `berth up`, docs/podman.md). On
    Podman both get the MAC Docker would derive from the address; on Docker nothing changes."""
    import dataclasses

    podman = plan(facts=dataclasses.replace(FACTS, engine="podman"))
    assert podman.hub.create_kwargs["networking_config"] == {
        "berth": {"IPAMConfig": {"IPv4Address": "172.30.0.2"}, "MacAddress": "02:42:ac:1e:00:02"}
    }
    assert podman.proxy.create_kwargs["networking_config"] == {
        "berth": {"IPAMConfig": {"IPv4Address": "172.30.0.3"}, "MacAddress": "02:42:ac:1e:00:03"}
    }
    docker = plan()
    assert docker.proxy.create_kwargs["networking_config"] == {
        "berth": {"IPAMConfig": {"IPv4Address": "172.30.0.3"}}
    }
