"""The berth.yaml schema: secure defaults, normalised values, and refusals that say why."""

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from berth.config import BerthConfig, ConfigError, config_from_data
from berth.config.fields import parse_memory
from berth.config.keys import key_paths, model_in


def refusal(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_data(data, file="berth.yaml")
    return info.value


def all_models() -> set[type[BaseModel]]:
    found = {BerthConfig}
    for _, field in key_paths():
        if (model := model_in(field.annotation)) is not None:
            found.add(model)
    return found


def test_defaults_are_secure_and_valid():
    cfg = config_from_data({})
    assert (cfg.listen.address, cfg.listen.port) == ("0.0.0.0", 8443)
    assert cfg.tls.cert is None  # self-signed
    assert cfg.images.default == "berth/base-notebook:latest"
    assert cfg.storage.volume_name_template == "berth-user-{username}{server_suffix}"
    assert cfg.storage.mount_point == "/home/jovyan/work"
    assert cfg.auth.type == "native"
    assert cfg.auth.native.open_signup is False
    assert cfg.hub.db_url.get_secret_value() == "sqlite:////srv/berth/data/jupyterhub.sqlite"
    assert cfg.idle_culler.enabled is True
    assert (cfg.egress.mode, cfg.egress.allow) == ("public", [])  # no LAN, no metadata service
    # The defaults pass their own validators.
    assert BerthConfig.model_validate(cfg.model_dump()) == cfg


def test_every_field_has_a_description():
    missing = [
        f"{model.__name__}.{name}"
        for model in all_models()
        for name, field in model.model_fields.items()
        if not (field.description and field.description.strip())
    ]
    assert not missing


def test_every_model_forbids_unknown_keys():
    assert all(m.model_config.get("extra") == "forbid" for m in all_models())


def test_config_is_immutable():
    cfg = config_from_data({})
    with pytest.raises(ValidationError):
        cfg.listen.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (8 * 1024**2, 8 * 1024**2),
        ("512M", 512 * 1024**2),
        ("2G", 2 * 1024**3),
        ("1.5g", int(1.5 * 1024**3)),
        ("1T", 1024**4),
        ("10000000", 10_000_000),
        (None, None),
    ],
)
def test_memory_units(value, expected):
    assert parse_memory(value) == expected
    assert config_from_data({"limits": {"memory": value}}).limits.memory == expected


def test_user_names_are_lowercased_and_deduplicated():
    cfg = config_from_data({"users": {"allowed": ["Alice", "alice", "bob"], "admins": ["Zoë"]}})
    assert cfg.users.allowed == ["alice", "bob"]
    assert cfg.users.admins == ["zoë"]


def test_images_as_list_or_mapping():
    listed = config_from_data(
        {
            "images": {
                "default": "berth/scipy-notebook:1.0",
                "allowed": ["berth/base-notebook:1.0", "berth/scipy-notebook:1.0"],
            }
        }
    )
    assert listed.images.allowed[1] == "berth/scipy-notebook:1.0"
    mapped = config_from_data(
        {
            "images": {
                "allowed": {
                    "Base": "berth/base-notebook:latest",
                    "GPU": "registry.example.org:5000/team/gpu@sha256:" + "a" * 64,
                }
            }
        }
    )
    assert list(mapped.images.allowed) == ["Base", "GPU"]


def test_secrets_never_print():
    cfg = config_from_data(
        {
            "auth": {
                "type": "github",
                "github": {"client_id": "id", "client_secret": "hush-hush", "allow_all": True},
            },
            "hub": {"db_url": "postgresql://hub:pa55word@db/jupyterhub"},
            "services": [{"name": "ci", "scopes": ["servers"], "token": "tok-0123456789"}],
        }
    )
    shown = repr(cfg) + str(cfg) + cfg.model_dump_json()
    for secret in ("hush-hush", "pa55word", "tok-0123456789"):
        assert secret not in shown
    assert isinstance(cfg.auth.github.client_secret, SecretStr)


def test_oidc_and_github_sections():
    cfg = config_from_data(
        {
            "auth": {
                "type": "oidc",
                "oidc": {
                    "authorize_url": "https://id.example.org/auth",
                    "token_url": "https://id.example.org/token",
                    "userdata_url": "https://id.example.org/userinfo",
                    "allowed_groups": ["jupyter"],
                },
            }
        }
    )
    assert cfg.auth.oauth is cfg.auth.oidc
    github = config_from_data({"auth": {"type": "github"}, "users": {"admins": ["alice"]}})
    assert github.auth.github is not None and github.auth.github.client_id is None


def test_cull_every_longer_than_timeout_is_fine():
    cfg = config_from_data({"idle_culler": {"timeout": 60, "every": 600}})
    assert (cfg.idle_culler.timeout, cfg.idle_culler.every) == (60, 600)


def test_a_timeout_of_zero_is_fine_while_the_culler_is_off():
    off = config_from_data({"idle_culler": {"enabled": False, "timeout": 0}}).idle_culler
    assert off.model_dump() == {"enabled": False, "timeout": 0, "every": 300, "max_age": 0}


OIDC = {"authorize_url": "https://i/a", "token_url": "https://i/t", "userdata_url": "https://i/u"}
TOKEN = "0123456789abcdef"


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"listen": {"port": 0}}, "listen.port", "at least 1"),
        ({"listen": {"port": 65536}}, "listen.port", "at most 65535"),
        ({"listen": {"port": "https"}}, "listen.port", "expected an integer, got 'https'"),
        ({"listen": {"address": "example.org"}}, "listen.address", "expected an IP address"),
        ({"listen": {"adress": "::"}}, "listen.adress", "did you mean 'address'"),
        ({"tls": {"cert": "cert.pem"}}, "tls.key", "given together"),
        ({"tls": {"hostnames": ["bad name"]}}, "tls.hostnames[0]", "neither a DNS name"),
        ({"images": {"default": "Berth/Base"}}, "images.default", "must be lowercase"),
        ({"images": {"allowed": ["berth/a:1"]}}, "images.default", "one of images.allowed"),
        ({"images": {"allowed": "berth/a"}}, "images.allowed", "a list of images or a mapping"),
        ({"images": {"allowed": {"": "berth/a"}}}, "images.allowed", "display name"),
        ({"images": {"pull_policy": "sometimes"}}, "images.pull_policy", "'ifnotpresent'"),
        (
            {"storage": {"volume_name_template": "shared"}},
            "storage.volume_name_template",
            "must contain {username}",
        ),
        (
            {"storage": {"volume_name_template": "{user}-x"}},
            "storage.volume_name_template",
            "unknown field",
        ),
        (
            {"storage": {"volume_name_template": "vol/{username}"}},
            "storage.volume_name_template",
            "not a valid Docker name",
        ),
        ({"storage": {"mount_point": "work"}}, "storage.mount_point", "absolute path"),
        ({"storage": {"mount_point": "/"}}, "storage.mount_point", "root directory"),
        ({"storage": {"mount_point": "/home/../etc"}}, "storage.mount_point", "'..'"),
        ({"limits": {"memory": -1}}, "limits.memory", "cannot be negative"),
        ({"limits": {"memory": "2GB"}}, "limits.memory", "suffix K, M, G or T"),
        ({"limits": {"memory": "1K"}}, "limits.memory", "at least 6M"),
        ({"limits": {"memory": True}}, "limits.memory", "expected an integer number"),
        ({"limits": {"cpu": 0.001}}, "limits.cpu", "at least 0.01"),
        ({"limits": {"pids": -1}}, "limits.pids", "must be at least 0, got -1"),
        ({"limits": {"cpu": float("inf")}}, "limits.cpu", "finite number, got inf"),
        ({"auth": {"type": "ldap"}}, "auth.type", "'native', 'github' or 'oidc'"),
        (
            {"auth": {"native": {"open_signup": True, "enable_signup": False}}},
            "auth.native.open_signup",
            "needs enable_signup",
        ),
        (
            {"auth": {"native": {"minimum_password_length": 0}}},
            "auth.native.minimum_password_length",
            "at least 1",
        ),
        ({"auth": {"type": "oidc"}}, "auth.oidc", "needs this section"),
        ({"auth": {"type": "native", "github": {}}}, "auth.github", "auth.type is 'native'"),
        ({"auth": {"type": "github"}}, "auth.github", "nobody could log in"),
        (
            {
                "auth": {"type": "oidc", "oidc": {**OIDC, "token_url": "http://i/t"}},
                "users": {"admins": ["a"]},
            },
            "auth.oidc.token_url",
            "https://",
        ),
        (
            {
                "auth": {"type": "oidc", "oidc": {**OIDC, "userdata_url": "ftp://x"}},
                "users": {"admins": ["a"]},
            },
            "auth.oidc.userdata_url",
            "absolute",
        ),
        (
            {
                "auth": {
                    "type": "github",
                    "github": {"callback_url": "/hub/oauth_callback", "allow_all": True},
                }
            },
            "auth.github.callback_url",
            "absolute",
        ),
        ({"users": {"allowed": ["ok", "no/slash"]}}, "users.allowed[1]", "contains '/'"),
        ({"users": {"allowed": [""]}}, "users.allowed[0]", "empty"),
        ({"users": {"admins": ["two words"]}}, "users.admins[0]", "whitespace"),
        ({"users": {"admins": [False]}}, "users.admins[0]", "quote the name"),
        ({"users": {"admins": [123]}}, "users.admins[0]", "quote the name"),
        ({"hub": {"db_url": "mysql://u@h/db"}}, "hub.db_url", "not supported"),
        ({"hub": {"db_url": "postgres://u@h/db"}}, "hub.db_url", "postgresql://"),
        ({"hub": {"db_url": "postgresql+psycopg2://u@h/db"}}, "hub.db_url", "postgresql://"),
        ({"hub": {"db_url": "postgresql://h"}}, "hub.db_url", "host and a database name"),
        ({"hub": {"db_url": "sqlite://"}}, "hub.db_url", "in-memory"),
        ({"hub": {"db_url": "sqlite:///jupyterhub.sqlite"}}, "hub.db_url", "absolute path"),
        ({"hub": {"db_url": "sqlite:////tmp/hub.sqlite"}}, "hub.db_url", "hub data volume"),
        ({"hub": {"data_volume": "-x"}}, "hub.data_volume", "not a valid Docker name"),
        ({"network": "a b"}, "network", "not a valid Docker name"),
        ({"network": "host"}, "network", "one of Docker's shared networks"),
        ({"network": "none"}, "network", "one of Docker's shared networks"),
        ({"network": "bridge"}, "network", "one of Docker's shared networks"),
        ({"network": "Default"}, "network", "one of Docker's shared networks"),
        ({"idle_culler": {"timeout": 0}}, "idle_culler.timeout", "at least 1 while"),
        ({"idle_culler": {"every": 0}}, "idle_culler.every", "at least 1"),
        ({"idle_culler": {"max_age": -1}}, "idle_culler.max_age", "at least 0"),
        (
            {"services": [{"name": "ci", "scopes": ["servers"]}]},
            "services[0].token",
            "exactly one of token and token_file",
        ),
        (
            {
                "services": [
                    {"name": "ci", "scopes": ["servers"], "token": TOKEN, "token_file": "t"}
                ]
            },
            "services[0].token",
            "exactly one",
        ),
        (
            {"services": [{"name": "ci", "scopes": ["servers"], "token": "short"}]},
            "services[0].token",
            "8 to 64 characters",
        ),
        (
            {"services": [{"name": "ci", "scopes": [], "token": TOKEN}]},
            "services[0].scopes",
            "at least 1",
        ),
        (
            {"services": [{"name": "ci", "scopes": ["servers", "all"], "token": TOKEN}]},
            "services[0].scopes[1]",
            "unknown JupyterHub scope",
        ),
        (
            {"services": [{"name": "ci", "scopes": ["custom:x:y"], "token": TOKEN}]},
            "services[0].scopes[0]",
            "custom scopes",
        ),
        (
            {"services": [{"name": "ci", "scopes": ["servers!usr=a"], "token": TOKEN}]},
            "services[0].scopes[0]",
            "unknown filter",
        ),
        (
            {"services": [{"name": "CI/bot", "scopes": ["servers"], "token": TOKEN}]},
            "services[0].name",
            "service name",
        ),
        (
            {"services": [{"name": "ci", "scopes": ["servers"], "token": TOKEN}] * 2},
            "services",
            "used twice",
        ),
        (
            {"services": [{"name": "idle-culler", "scopes": ["servers"], "token": TOKEN}]},
            "services",
            "idle culler",
        ),
        ({"version": 2}, "version", "expected 1"),
        ({"egress": {"mode": "open"}}, "egress.mode", "'public', 'none' or 'all'"),
        ({"egress": "none"}, "egress", "expected a mapping"),
        ({"egress": {"allow": ["10.1.2.3/24"]}}, "egress.allow[0]", "host bits set"),
        ({"egress": {"allow": ["fd00::/8"]}}, "egress.allow[0]", "IPv4 network"),
        ({"egress": {"allow": [10]}}, "egress.allow[0]", "got 10"),
        ({"egress": {"allow": ["0.0.0.0/0"]}}, "egress.allow[0]", "mode: all"),
        ({"egress": {"mode": "all", "allow": ["10.0.0.0/8"]}}, "egress.allow", "no effect"),
        ({"listen": ["0.0.0.0", 8443]}, "listen", "expected a mapping"),
    ],
)
def test_refusals_name_the_key_and_what_was_expected(data, key, fragment):
    error = refusal(data)
    assert error.key_path == key, str(error)
    assert fragment in error.message, str(error)
    assert error.file == "berth.yaml"
    assert "pydantic" not in str(error) and "Traceback" not in str(error)


def test_secret_values_are_not_echoed_in_errors():
    error = refusal({"hub": {"db_url": "mysql://hub:pa55word@db/x"}})
    assert "pa55word" not in str(error)
    error = refusal({"services": [{"name": "ci", "scopes": ["servers"], "token": 12345678}]})
    assert "12345678" not in str(error)


def test_several_problems_are_reported_together():
    error = refusal({"listen": {"port": 0}, "limits": {"cpu": -1}})
    assert [p.key_path for p in error.problems] == ["listen.port", "limits.cpu"]
    assert str(error).count("\n") == 1


def test_scope_filters():
    scopes = [
        "read:users!group=students",
        "servers!user=alice",
        "access:servers!server=a/b",
        "read:users!user",
        "admin:users",
    ]
    cfg = config_from_data({"services": [{"name": "bot", "scopes": scopes, "token": TOKEN}]})
    assert cfg.services[0].scopes == scopes


def test_an_empty_key_takes_its_default():
    # `tls:` with every line below it commented out is null in YAML.
    cfg = config_from_data(
        {"tls": None, "users": {"allowed": None}, "services": None, "images": {"default": None}}
    )
    assert cfg.tls.cert is None and cfg.users.allowed == [] and cfg.services == []
    assert cfg.images.default == "berth/base-notebook:latest"
    # …but a required key left empty is refused, not defaulted.
    error = refusal({"services": [{"name": None, "scopes": ["servers"], "token": TOKEN}]})
    assert (error.key_path, error.message) == ("services[0].name", "expected a string, got null")


def test_egress_allow_takes_addresses_and_networks():
    cfg = config_from_data({"egress": {"mode": "none", "allow": ["10.1.2.0/24", " 192.168.7.20"]}})
    assert cfg.egress.allow == ["10.1.2.0/24", "192.168.7.20/32"]
