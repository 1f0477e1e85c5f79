"""`berth up` with `backend: system-users`, as pure data: berth.yaml checks, the hub's config,
the guard's extra arguments and read-only mounts, and a hub with nothing new."""

import pytest

from berth.config.errors import ConfigError
from berth.config.load import config_from_data
from berth.config.translate import to_jupyterhub_config
from berth.deploy.containerplan import HostFacts
from berth.deploy.plan import plan_deployment

FACTS = HostFacts(hub_image_id="sha256:abc", socket_gid=998, tls_names=["vm", "127.0.0.1"])
ON = {
    "backend": "system-users",
    "system_users": {"trust_login_names": True},
    "auth": {"native": {"enable_signup": False}},
}


def config(**changes):
    data = {**ON, **changes}
    return config_from_data(data)


def test_the_hub_runs_servers_as_host_accounts_with_their_homes_and_no_volume():
    c = to_jupyterhub_config(config())
    assert c["JupyterHub"]["spawner_class"] == "berth-system-users"
    assert c["SystemUserSpawner"] == {
        "host_homedir_format_string": "/home/{username}",
        "image_homedir_format_string": "/home/{username}",
        "min_uid": 1000,
        "trust_authenticator_names": True,
    }
    assert c["ContainerSpawner"]["volumes"] == {}  # the home is their storage
    assert "notebook_dir" not in c.get("Spawner", {})  # Jupyter opens in the home
    docker = to_jupyterhub_config(config_from_data({}))
    assert docker["JupyterHub"]["spawner_class"] == "berth"
    assert "SystemUserSpawner" not in docker


def test_the_guard_gets_etc_and_the_homes_root_read_only_and_the_hub_nothing_new():
    plan = plan_deployment(config(system_users={"trust_login_names": True,
                                                "host_home": "/srv/homes/u-{username}",
                                                "min_uid": 2000}), FACTS)  # fmt: skip
    default = plan_deployment(config_from_data({}), FACTS)
    guard, before = plan.guard.create_kwargs, default.guard.create_kwargs
    assert guard["command"] == [
        *before["command"],
        "--home-root", "/srv/homes",
        "--user-db-from", "/srv/berth/host-etc",
        "--user-db-to", "/run/berth-engine/userdb",
    ]  # fmt: skip
    assert guard["volumes"] == {
        **before["volumes"],
        "/etc": {"bind": "/srv/berth/host-etc", "mode": "ro"},
        "/srv/homes": {"bind": "/srv/homes", "mode": "ro"},
    }
    rest = {k: v for k, v in guard.items() if k not in ("command", "volumes", "labels")}
    assert rest == {k: v for k, v in before.items() if k not in ("command", "volumes", "labels")}
    # The hub: the same mounts, environment and privileges as with the docker back end.
    hub, docker_hub = plan.hub.create_kwargs, default.hub.create_kwargs
    for key in ("volumes", "environment", "cap_drop", "security_opt", "network"):
        assert hub[key] == docker_hub[key], key
    assert "group_add" not in hub and "user" not in hub
    assert "c.SystemUserSpawner.passwd_file = '/run/berth-engine/userdb/passwd'" in plan.config_py
    assert "c.SystemUserSpawner.group_file = '/run/berth-engine/userdb/group'" in plan.config_py
    assert "c.SystemUserSpawner.check_host_home = False" in plan.config_py
    assert "c.SystemUserSpawner.min_uid = 2000" in plan.config_py
    assert plan.guard.fingerprint != default.guard.fingerprint  # switching restarts the guard


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"system_users": {}}, "system_users.trust_login_names", "trust_login_names: true"),
        ({"auth": {}}, "auth.native.enable_signup", "set enable_signup: false"),
        (
            {"auth": {"native": {"enable_signup": True, "open_signup": True}}},
            "auth.native.enable_signup",
            "choose a host account's name",
        ),
        (
            {
                "auth": {
                    "type": "oidc",
                    "oidc": {
                        "client_id": "c",
                        "client_secret": "s",
                        "authorize_url": "https://idp.example/a",
                        "token_url": "https://idp.example/t",
                        "userdata_url": "https://idp.example/u",
                        "allow_all": True,
                    },
                }
            },
            "auth.oidc.allow_all",
            "every account of the provider",
        ),
        (
            {"system_users": {"trust_login_names": True, "host_home": "/{username}"}},
            "system_users.host_home",
            "holds the system's own directories",
        ),
        (
            {"system_users": {"trust_login_names": True, "host_home": "/etc/{username}"}},
            "system_users.host_home",
            "system directory /etc",
        ),
        (
            {"system_users": {"trust_login_names": True, "host_home": "/var/{username}"}},
            "system_users.host_home",
            "holds the system's own directories",
        ),
        (
            {"system_users": {"trust_login_names": True, "host_home": "/var/run/{username}"}},
            "system_users.host_home",
            "system directory /var/run",
        ),
        (
            {"system_users": {"trust_login_names": True, "host_home": "/home/../{username}"}},
            "system_users.host_home",
            "written plainly",
        ),
        (
            {"system_users": {"trust_login_names": True, "host_home": "/home/{username}/work"}},
            "system_users.host_home",
            "in its last part",
        ),
        (
            {"system_users": {"trust_login_names": True, "host_home": "/home/alice"}},
            "system_users.host_home",
            "must contain {username} once",
        ),
        (
            {"system_users": {"trust_login_names": True, "host_home": "home/{username}"}},
            "system_users.host_home",
            "absolute path",
        ),
        (
            {"system_users": {"trust_login_names": True, "image_home": "/x/{uid}"}},
            "system_users.image_home",
            "unknown field {uid}",
        ),
        (
            {"system_users": {"trust_login_names": True, "min_uid": 0}},
            "system_users.min_uid",
            "must be at least 1",
        ),
    ],
)
def test_unsafe_or_malformed_settings_are_refused_with_one_clear_error(changes, key, words):
    with pytest.raises(ConfigError) as caught:
        config(**changes)
    assert caught.value.key_path == key
    assert words in caught.value.message
    assert len(caught.value.problems) == 1


def test_system_users_settings_with_another_backend_are_refused():
    with pytest.raises(ConfigError) as caught:
        config_from_data({"system_users": {"trust_login_names": True}})
    assert caught.value.key_path == "system_users"
    assert "backend is 'docker'" in caught.value.message


def test_oauth_with_listed_users_and_trusted_names_is_accepted():
    cfg = config(
        auth={"type": "github", "github": {"client_id": "c", "client_secret": "s"}},
        users={"allowed": ["alice"]},
    )
    assert cfg.backend == "system-users"
