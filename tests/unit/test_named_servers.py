"""Named servers: berth.yaml's `servers` section, and the names of their containers and volumes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from berth import names
from berth.config import ConfigError, config_from_data, to_jupyterhub_config
from berth.config.storage import DEFAULT_VOLUME_TEMPLATE
from berth.spawner import ContainerSpawner
from berth.spawner.errors import SpawnException
from berth.spawner.specs import container_create_kwargs

CONTAINER_TEMPLATE = ContainerSpawner().name_template


def refusal(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_data(data, file="berth.yaml")
    return info.value


def test_named_servers_are_off_by_default():
    c = to_jupyterhub_config(config_from_data({}))
    assert "allow_named_servers" not in c["JupyterHub"]
    assert "named_server_limit_per_user" not in c["JupyterHub"]


def test_named_servers_turn_on_jupyterhubs_setting_with_the_limit():
    c = to_jupyterhub_config(config_from_data({"servers": {"named": True, "limit_per_user": 2}}))
    assert (
        c["JupyterHub"]["allow_named_servers"],
        c["JupyterHub"]["named_server_limit_per_user"],
    ) == (
        True,
        2,
    )
    assert c["ContainerSpawner"]["volumes"] == {DEFAULT_VOLUME_TEMPLATE: "/home/jovyan/work"}
    default = to_jupyterhub_config(config_from_data({"servers": {"named": True}}))
    assert default["JupyterHub"]["named_server_limit_per_user"] == 3


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        (
            {"servers": {"named": True}, "storage": {"volume_name_template": "home-{username}"}},
            "storage.volume_name_template",
            "'home-{username}{server_suffix}'",
        ),
        ({"servers": {"limit_per_user": 5}}, "servers.limit_per_user", "servers.named: true"),
        ({"servers": {"named": True, "limit_per_user": -1}}, "servers.limit_per_user", "0"),
        ({"servers": {"named": "yes please"}}, "servers.named", "true or false"),
    ],
)
def test_refusals(data, key, fragment):
    error = refusal(data)
    assert error.key_path == key, str(error)
    assert fragment in error.message, str(error)


def test_swarm_gives_each_named_server_its_own_volume_too():
    """Fails on main before this change, which refused named servers on Swarm."""
    c = to_jupyterhub_config(config_from_data({"servers": {"named": True}, "backend": "swarm"}))
    assert c["JupyterHub"]["allow_named_servers"] is True
    assert c["ContainerSpawner"]["volumes"] == {DEFAULT_VOLUME_TEMPLATE: "/home/jovyan/work"}
    error = refusal(
        {
            "servers": {"named": True},
            "backend": "swarm",
            "storage": {"volume_name_template": "home-{username}"},
        }
    )
    assert error.key_path == "storage.volume_name_template", str(error)


def test_system_users_servers_share_the_users_home_and_no_volume():
    """Fails on main before this change, which refused named servers with system users."""
    data = {
        "servers": {"named": True},
        "backend": "system-users",
        "system_users": {"trust_login_names": True},
        "auth": {"native": {"enable_signup": False}},
        # whatever the template says: system users get no volume, the home is theirs
        "storage": {"volume_name_template": "home-{username}"},
    }
    c = to_jupyterhub_config(config_from_data(data))
    assert c["JupyterHub"]["allow_named_servers"] is True
    assert c["ContainerSpawner"]["volumes"] == {}


def test_a_template_with_the_server_name_is_accepted():
    data = {
        "servers": {"named": True},
        "storage": {"volume_name_template": "v-{username}_{servername}"},
    }
    assert config_from_data(data).servers.named


def test_the_default_server_keeps_the_volume_name_it_had_before_named_servers():
    """Upgrading changes the default template, not the default server's volume."""
    old = names.render("berth-user-{username}", names.template_namespace("berth", "Alice"))
    new = names.render(DEFAULT_VOLUME_TEMPLATE, names.template_namespace("berth", "Alice"))
    assert new == old == "berth-user--41lice"


def rendered(user: str, server: str) -> tuple[str, str]:
    namespace = names.template_namespace("berth", user, server)
    return names.render(CONTAINER_TEMPLATE, namespace), names.render(
        DEFAULT_VOLUME_TEMPLATE, namespace
    )


def test_user_and_server_names_never_meet():
    """User `a-b`'s server `c`, user `a`'s server `b-c`, user `a_b`'s default server and user
    `a`'s server `b_c` get four different containers and four different volumes."""
    pairs = [("a-b", "c"), ("a", "b-c"), ("a_b-c", ""), ("a", "b_c"), ("a_b", "c")]
    got = {pair: rendered(*pair) for pair in pairs}
    assert got[("a-b", "c")] == ("berth-a-2db_c", "berth-user-a-2db_c")
    assert got[("a", "b-c")] == ("berth-a_b-2dc", "berth-user-a_b-2dc")
    assert len({c for c, _ in got.values()}) == len({v for _, v in got.values()}) == len(pairs)


def make_spawner(user: str, server: str) -> ContainerSpawner:
    c = Config()
    c.ContainerSpawner.volumes = {DEFAULT_VOLUME_TEMPLATE: "/home/jovyan/work"}
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/")
    owner = SimpleNamespace(name=user, url=f"/user/{user}/", escaped_name=user)
    orm_spawner = SimpleNamespace(name=server, display_name=server, server=None)
    return ContainerSpawner(config=c, user=owner, hub=hub, orm_spawner=orm_spawner)


@pytest.mark.parametrize(
    "server",
    ["..", "../../etc", "..%2f..%2fhub", "x/../y", "gpu\n", "ünïcødé-名前", "\u202eevil", "a" * 80],
)
def test_crafted_server_names_become_plain_docker_names(server):
    """Path traversal, control characters and Unicode in a server name reach the engine only
    escaped: one Docker name of [a-z0-9_-], no '.' or '/', labelled with the raw name."""
    spec = asyncio.run(make_spawner("alice", server)._build_spec("berth/base-notebook:latest"))
    kwargs = container_create_kwargs(spec)
    (bind,) = kwargs["host_config"]["binds"]
    volume = bind.split(":", 1)[0]
    for name in (kwargs["name"], volume):
        assert names.DOCKER_NAME_RE.match(name) and not set(name) & set("./\n"), name
    assert kwargs["name"] == "berth-alice_" + names.escape(server)
    assert volume == "berth-user-alice_" + names.escape(server)
    assert kwargs["labels"]["berth.server"] == server


def test_an_overlong_server_name_fails_the_start_with_a_message():
    """255 characters of JupyterHub's server name escape to far more than a Docker name may
    hold: the start fails as a configuration error before anything reaches the engine."""
    with pytest.raises(SpawnException) as info:
        asyncio.run(make_spawner("alice", "é" * 120)._build_spec("berth/base-notebook:latest"))
    assert info.value.reason == "config" and "longer than 255" in info.value.message
