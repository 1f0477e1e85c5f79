"""berth.yaml dict in -> JupyterHub config out (the way TLJH tests its configurer); the
`auth` section's translation: test_config_translate_auth.py."""

import importlib

import pytest
from oauth_clients import GITHUB, OIDC
from traitlets.config import Config, Configurable

from berth.config import (
    HubRuntime,
    SecretFile,
    UnresolvedConfigError,
    config_from_data,
    hub_secret_files,
    render_config_py,
    to_jupyterhub_config,
)

TOKEN = "0123456789abcdef"


def apply(overrides: dict, runtime: HubRuntime | None = None) -> dict:
    return to_jupyterhub_config(config_from_data(overrides), runtime)


def test_hub_defaults():
    c = apply({})
    hub = c["JupyterHub"]
    assert hub["bind_url"] == "https://0.0.0.0:8443/"
    assert hub["ssl_cert"] == "/srv/berth/data/tls/cert.pem"
    assert hub["ssl_key"] == "/srv/berth/data/tls/key.pem"
    assert hub["cookie_secret_file"] == "/srv/berth/data/secrets/cookie_secret"
    assert hub["db_url"] == "sqlite:////srv/berth/data/jupyterhub.sqlite"
    assert hub["spawner_class"] == "berth"
    assert (hub["hub_ip"], hub["hub_port"], hub["hub_connect_ip"]) == ("0.0.0.0", 8081, "berth-hub")
    assert hub["cleanup_servers"] is False
    assert hub["tornado_settings"] == {"compress_response": True}
    assert c["ConfigurableHTTPProxy"]["auth_token"] == SecretFile(
        "/srv/berth/data/secrets/proxy_token"
    )
    assert c["CryptKeeper"]["keys"] == [SecretFile("/srv/berth/data/secrets/crypt_key")]


def test_listen_port_and_runtime_bind_address():
    assert apply({"listen": {"port": 443}})["JupyterHub"]["bind_url"] == "https://0.0.0.0:443/"
    as_process = HubRuntime(bind_address=None)
    c = apply({"listen": {"address": "::1", "port": 9443}}, as_process)
    assert c["JupyterHub"]["bind_url"] == "https://[::1]:9443/"
    c = apply({}, HubRuntime(bind_port=8000, hub_connect_host="hub"))
    assert c["JupyterHub"]["bind_url"] == "https://0.0.0.0:8000/"
    assert c["JupyterHub"]["hub_connect_ip"] == "hub"


def test_runtime_may_omit_proxy_token_and_crypt_key():
    c = apply({}, HubRuntime(proxy_token_file=None, crypt_key_file=None))
    assert "ConfigurableHTTPProxy" not in c and "CryptKeeper" not in c


def test_spawner_defaults():
    c = apply({})
    assert c["Spawner"] == {"notebook_dir": "/home/jovyan/work"}
    assert c["ContainerSpawner"] == {
        "image": "berth/base-notebook:latest",
        "pull_policy": "ifnotpresent",
        "volumes": {"berth-user-{username}{server_suffix}": "/home/jovyan/work"},
        "network_name": "berth",
        "use_internal_ip": True,
        "remove": True,
        "snapshot_images": True,
    }


def test_images_limits_storage_network():
    c = apply(
        {
            "images": {
                "default": "berth/scipy-notebook:1.0",
                "pull_policy": "never",
                "allowed": {"SciPy": "berth/scipy-notebook:1.0", "Base": "berth/base:1.0"},
            },
            "storage": {
                "volume_name_template": "{prefix}-home-{username}",
                "mount_point": "/home/jovyan/",
            },
            "limits": {"memory": "1G", "cpu": 2},
            "network": "jupyterhub-network",
        }
    )
    spawner = c["ContainerSpawner"]
    assert spawner["image"] == "berth/scipy-notebook:1.0"
    assert spawner["pull_policy"] == "never"
    assert list(spawner["allowed_images"].items()) == [
        ("SciPy", "berth/scipy-notebook:1.0"),
        ("Base", "berth/base:1.0"),
    ]
    assert spawner["volumes"] == {"{prefix}-home-{username}": "/home/jovyan"}
    assert spawner["network_name"] == "jupyterhub-network"
    assert c["Spawner"] == {"notebook_dir": "/home/jovyan", "mem_limit": 1024**3, "cpu_limit": 2.0}


def test_allowed_images_as_list():
    c = apply({"images": {"allowed": ["berth/base-notebook:latest", "berth/r:1"]}})
    assert c["ContainerSpawner"]["allowed_images"] == ["berth/base-notebook:latest", "berth/r:1"]


def test_postgres_url_with_password_goes_through_a_file():
    url = "postgresql://hub:pa55@db:5432/jupyterhub"
    c = apply({"hub": {"db_url": url}})
    assert c["JupyterHub"]["db_url"] == SecretFile("/srv/berth/data/secrets/db_url")
    files = hub_secret_files(config_from_data({"hub": {"db_url": url}}))
    assert files["/srv/berth/data/secrets/db_url"].get_secret_value() == url
    no_password = "postgresql://hub@db/jupyterhub"
    assert apply({"hub": {"db_url": no_password}})["JupyterHub"]["db_url"] == no_password


def test_idle_culler_service_and_role():
    c = apply(
        {"idle_culler": {"timeout": 600, "every": 60, "max_age": 86400}},
        HubRuntime(python="/usr/local/bin/python3"),
    )
    assert c["JupyterHub"]["services"] == [
        {
            "name": "idle-culler",
            "command": [
                "/usr/local/bin/python3",
                "-m",
                "jupyterhub_idle_culler",
                "--timeout=600",
                "--cull-every=60",
                "--max-age=86400",
            ],
        }
    ]
    assert c["JupyterHub"]["load_roles"] == [
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    ]


def test_idle_culler_disabled_means_no_services():
    c = apply({"idle_culler": {"enabled": False}})
    assert "services" not in c["JupyterHub"] and "load_roles" not in c["JupyterHub"]


def test_automation_services_get_a_token_file_and_a_role():
    c = apply(
        {
            "idle_culler": {"enabled": False},
            "services": [
                {"name": "provisioner", "scopes": ["admin:users", "servers"], "token": TOKEN}
            ],
        }
    )
    assert c["JupyterHub"]["services"] == [
        {
            "name": "provisioner",
            "api_token": SecretFile("/srv/berth/data/secrets/service-provisioner.token"),
        }
    ]
    assert c["JupyterHub"]["load_roles"] == [
        {
            "name": "service-provisioner",
            "scopes": ["admin:users", "servers"],
            "services": ["provisioner"],
        }
    ]


def test_unresolved_config_is_refused():
    cfg = config_from_data({"auth": {"type": "github"}, "users": {"admins": ["a"]}})
    with pytest.raises(UnresolvedConfigError, match="client_id"):
        to_jupyterhub_config(cfg)
    with pytest.raises(UnresolvedConfigError, match="client_secret"):
        hub_secret_files(cfg)
    cfg = config_from_data(
        {"services": [{"name": "ci", "scopes": ["servers"], "token_file": "ci.token"}]}
    )
    with pytest.raises(UnresolvedConfigError, match="'ci'"):
        hub_secret_files(cfg)


def test_translation_is_pure_and_deterministic():
    data = {
        "users": {"allowed": ["b", "a", "c"]},
        "services": [{"name": "ci", "scopes": ["servers"], "token": TOKEN}],
    }
    cfg = config_from_data(data)
    first = render_config_py(to_jupyterhub_config(cfg))
    assert render_config_py(to_jupyterhub_config(config_from_data(data))) == first
    assert cfg == config_from_data(data)  # not modified
    assert "c.Authenticator.allowed_users = {'a', 'b', 'c'}\n" in first


FULL = {
    "auth": {"type": "github", "github": {**GITHUB, "allowed_organizations": ["o"]}},
    "users": {"admins": ["alice"]},
    "hub": {"db_url": "postgresql://hub:pa55word@db/jupyterhub"},
    "limits": {"memory": "512M", "cpu": 0.5},
    "images": {"allowed": ["berth/base-notebook:latest", "berth/scipy-notebook:latest"]},
    "services": [{"name": "ci", "scopes": ["admin:users"], "token": "tok-" + TOKEN}],
}


def test_rendered_file_holds_no_secret_and_loads_into_traitlets(tmp_path):
    runtime = HubRuntime(
        secrets_dir=str(tmp_path),
        proxy_token_file=str(tmp_path / "proxy"),
        crypt_key_file=str(tmp_path / "crypt"),
    )
    cfg = config_from_data(FULL)
    text = render_config_py(to_jupyterhub_config(cfg, runtime))
    for secret in ("gh-secret", "pa55word", "tok-" + TOKEN):
        assert secret not in text
    # What `berth up` would write, then what JupyterHub does with the file.
    for path, value in hub_secret_files(cfg, runtime).items():
        (tmp_path / path.rsplit("/", 1)[1]).write_text(value.get_secret_value() + "\n")
    (tmp_path / "proxy").write_text("proxy-token\n")
    (tmp_path / "crypt").write_text("ab" * 32)
    c = Config()
    exec(compile(text, "jupyterhub_config.py", "exec"), {"get_config": lambda: c})
    assert c.GitHubOAuthenticator.client_secret == "gh-secret"
    assert c.JupyterHub.db_url == "postgresql://hub:pa55word@db/jupyterhub"
    assert c.JupyterHub.services[1]["api_token"] == "tok-" + TOKEN
    assert c.ConfigurableHTTPProxy.auth_token == "proxy-token"
    assert c.Spawner.mem_limit == 512 * 1024**2


# Where each config section's class lives. Packages that only the hub image installs are
# checked when present (pip install oauthenticator jupyterhub-nativeauthenticator).
SECTION_CLASSES = {
    "JupyterHub": "jupyterhub.app:JupyterHub",
    "Spawner": "jupyterhub.spawner:Spawner",
    "Authenticator": "jupyterhub.auth:Authenticator",
    "ConfigurableHTTPProxy": "jupyterhub.proxy:ConfigurableHTTPProxy",
    "CryptKeeper": "jupyterhub.crypto:CryptKeeper",
    "ContainerSpawner": "berth.spawner:ContainerSpawner",
    "NativeAuthenticator": "nativeauthenticator:NativeAuthenticator",
    "GitHubOAuthenticator": "oauthenticator.github:GitHubOAuthenticator",
    "GenericOAuthenticator": "oauthenticator.generic:GenericOAuthenticator",
    "BerthNativeAuthenticator": "berth.auth.native:BerthNativeAuthenticator",
    "BerthOIDCAuthenticator": "berth.auth.oidc:BerthOIDCAuthenticator",
}
VARIANTS = [{}, FULL, {"auth": {"type": "oidc", "oidc": {**OIDC, "allowed_groups": ["g"]}}}]


def _section_keys():
    seen: dict[str, set[str]] = {}
    for variant in VARIANTS:
        for section, values in apply(variant).items():
            seen.setdefault(section, set()).update(values)
    return sorted((s, k) for s, keys in seen.items() for k in keys)


@pytest.mark.parametrize(("section", "key"), _section_keys())
def test_every_key_is_a_configurable_trait(section, key):
    module, _, name = SECTION_CLASSES[section].partition(":")
    if module.split(".")[0] in ("oauthenticator", "nativeauthenticator") or module.startswith(
        "berth.auth"
    ):
        pytest.importorskip(module)
    cls: type[Configurable] = getattr(importlib.import_module(module), name)
    trait = cls.class_traits(config=True).get(key)
    assert trait is not None, f"{section}.{key} is not a configurable trait of {cls.__name__}"


def test_limits_pids_and_zero_for_none():
    c = apply({"limits": {"memory": 0, "cpu": 0, "pids": 4096}})
    assert c["Spawner"]["mem_limit"] == 0 and c["Spawner"]["cpu_limit"] == 0
    assert c["ContainerSpawner"]["pids_limit"] == 4096
    c = apply({})  # unset: the spawner's own defaults apply
    assert "mem_limit" not in c["Spawner"] and "pids_limit" not in c["ContainerSpawner"]


def test_berth_up_prints_the_limits_in_force():
    from berth.cli.deploy import _limits_line
    from berth.config.schema import LimitsConfig
    from berth.spawner import limits

    assert _limits_line(LimitsConfig(memory="1G", cpu=2, pids=0)) == (
        "memory 1 GiB, 2 CPUs, no process limit"
    )
    assert _limits_line(LimitsConfig()) == limits.describe(
        limits.default_mem_limit(), limits.default_cpu_limit(), 1024
    )


def test_berth_up_prints_what_user_servers_reach():
    from berth.cli.deploy import _egress_line
    from berth.config.egress import EgressConfig

    assert _egress_line(EgressConfig()) == "the public internet, no private or reserved address"
    assert _egress_line(EgressConfig(mode="none", allow=["10.1.2.0/24", "10.3.0.1/32"])) == (
        "the hub only; also 10.1.2.0/24, 10.3.0.1/32"
    )
    assert _egress_line(EgressConfig(mode="all")) == "everything but link-local"
