"""load_config: YAML in, a resolved BerthConfig or one ConfigError with file, line and key out."""

import os
from pathlib import Path

import pytest

from berth.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
TOKEN = "0123456789abcdef0123"


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def load(tmp_path: Path, text: str, **kwargs) -> object:
    return load_config(
        write(tmp_path / "berth.yaml", text), environ=kwargs.pop("environ", {}), **kwargs
    )


def refusal(tmp_path: Path, text: str, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, **kwargs)
    return info.value


def test_example_file_validates():
    cfg = load_config(REPO / "berth.example.yaml", environ={})
    assert cfg.listen.port == 8443


def test_empty_file_means_defaults(tmp_path):
    assert load(tmp_path, "").listen.port == 8443
    assert load(tmp_path, "# nothing yet\n").auth.type == "native"


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "berth.yaml")
    assert "file not found" in str(info.value)
    assert load_config(tmp_path / "berth.yaml", missing_ok=True).listen.port == 8443


def test_error_names_file_line_and_key(tmp_path):
    error = refusal(tmp_path, "listen:\n  port: 8443\nlimits:\n  memory: 2GB\n")
    assert (error.key_path, error.problems[0].line) == ("limits.memory", 4)
    assert str(error) == (
        f"{tmp_path / 'berth.yaml'}:4: limits.memory: expected an integer number of bytes or a "
        "number with suffix K, M, G or T (powers of 1024; also KiB, MiB, GiB, TiB; "
        "e.g. 512M, 2G, 2GiB), got '2GB'"
    )


def test_missing_key_points_at_its_section(tmp_path):
    error = refusal(tmp_path, "auth:\n  type: oidc\n  oidc:\n    token_url: https://i/t\n")
    assert error.key_path == "auth.oidc.authorize_url"
    assert error.problems[0].line == 3


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("listen:\n  port: 1\n  port: 2\n", 3, "given twice (first on line 2)"),
        ("listen: [unclosed\n", 2, "not valid YAML"),
        ("a: 1\n---\nb: 2\n", 2, "not valid YAML"),
        ("- just\n- a list\n", None, "expected a mapping of settings"),
        ("users:\n  allowed: [yes]\n", 2, "quote the name"),
    ],
)
def test_yaml_level_problems(tmp_path, text, line, fragment):
    error = refusal(tmp_path, text)
    assert fragment in str(error)
    assert error.problems[0].line == line


def test_relative_paths_are_resolved_against_the_config(tmp_path):
    write(tmp_path / "cert.pem", "CERT")
    write(tmp_path / "key.pem", "KEY", 0o600)
    cfg = load(tmp_path, "tls:\n  cert: cert.pem\n  key: key.pem\n")
    assert cfg.tls.cert == tmp_path / "cert.pem"
    assert cfg.tls.key.is_absolute()


def test_unreadable_certificate_is_refused(tmp_path):
    error = refusal(tmp_path, "tls:\n  cert: nope.pem\n  key: nope.key\n")
    assert [p.key_path for p in error.problems] == ["tls.cert", "tls.key"]
    assert "file not found" in error.message
    assert error.problems[0].line == 2


def test_userlist_file_is_merged(tmp_path):
    write(tmp_path / "userlist", "jtyberg admin\njenny\nguido\n")
    cfg = load(tmp_path, "users:\n  allowed: [carol]\n  userlist_file: userlist\n")
    assert cfg.users.allowed == ["carol", "jtyberg", "jenny", "guido"]
    assert cfg.users.admins == ["jtyberg"]


def test_bad_userlist_line_is_reported_with_its_own_line(tmp_path):
    write(tmp_path / "userlist", "jtyberg admin\njenny admn\n")
    error = refusal(tmp_path, "users:\n  userlist_file: userlist\n")
    assert error.key_path == "users.userlist_file"
    assert f"{tmp_path / 'userlist'}:2: expected 'NAME' or 'NAME admin'" in error.message


SERVICE = "services:\n  - name: ci\n    scopes: [admin:users]\n    token_file: ci.token\n"


def test_service_token_file_is_read(tmp_path):
    write(tmp_path / "ci.token", TOKEN + "\n", 0o600)
    cfg = load(tmp_path, SERVICE)
    assert cfg.services[0].token.get_secret_value() == TOKEN
    assert cfg.services[0].token_file is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_token_file_readable_by_others_is_refused(tmp_path, mode):
    write(tmp_path / "ci.token", TOKEN, mode)
    error = refusal(tmp_path, SERVICE)
    assert error.key_path == "services[0].token_file"
    assert f"mode {mode:04o}" in error.message and "chmod 600" in error.message
    assert error.problems[0].line == 4
    assert TOKEN not in str(error)


def test_token_file_with_a_bad_token(tmp_path):
    write(tmp_path / "ci.token", "short", 0o600)
    assert "8 to 64 characters" in refusal(tmp_path, SERVICE).message


GITHUB = "auth:\n  type: github\n{extra}users:\n  admins: [alice]\n"


def test_github_credentials_from_the_environment(tmp_path):
    env = {
        "GITHUB_CLIENT_ID": "env-id",
        "GITHUB_CLIENT_SECRET": "env-secret",
        "OAUTH_CALLBACK_URL": "https://hub.example.org/hub/oauth_callback",
    }
    cfg = load(tmp_path, GITHUB.format(extra=""), environ=env)
    assert cfg.auth.github.client_id == "env-id"
    assert cfg.auth.github.client_secret.get_secret_value() == "env-secret"
    assert cfg.auth.github.callback_url == env["OAUTH_CALLBACK_URL"]


def test_github_credentials_from_oauth_env_with_precedence(tmp_path):
    write(
        tmp_path / "oauth.env",
        "# seed format\nGITHUB_CLIENT_ID=file-id\nGITHUB_CLIENT_SECRET='file-secret'\n",
        0o600,
    )
    extra = "  github:\n    client_id: inline-id\n    env_file: oauth.env\n"
    cfg = load(tmp_path, GITHUB.format(extra=extra), environ={"GITHUB_CLIENT_SECRET": "env"})
    assert cfg.auth.github.client_id == "inline-id"  # berth.yaml first
    assert cfg.auth.github.client_secret.get_secret_value() == "env"  # then the environment
    cfg = load(tmp_path, GITHUB.format(extra=extra))
    assert cfg.auth.github.client_secret.get_secret_value() == "file-secret"  # then the file
    assert cfg.auth.github.callback_url is None


def test_missing_oauth_credentials_say_where_to_put_them(tmp_path):
    error = refusal(tmp_path, GITHUB.format(extra=""))
    assert [p.key_path for p in error.problems] == [
        "auth.github.client_id",
        "auth.github.client_secret",
    ]
    assert "GITHUB_CLIENT_SECRET" in error.problems[1].message


def test_oauth_env_file_must_be_private(tmp_path):
    write(tmp_path / "oauth.env", "GITHUB_CLIENT_ID=x\nGITHUB_CLIENT_SECRET=y\n", 0o644)
    error = refusal(tmp_path, GITHUB.format(extra="  github:\n    env_file: oauth.env\n"))
    assert [p.key_path for p in error.problems] == ["auth.github.env_file"]
    assert "mode 0644" in error.message


def test_bad_oauth_env_line_does_not_echo_it(tmp_path):
    write(tmp_path / "oauth.env", "GITHUB_CLIENT_ID=x\nsupersecretvalue\n", 0o600)
    error = refusal(tmp_path, GITHUB.format(extra="  github:\n    env_file: oauth.env\n"))
    assert ":2: expected KEY=VALUE" in error.message
    assert "supersecretvalue" not in str(error)


def test_oidc_credentials_use_oauthenticator_names(tmp_path):
    text = (
        "auth:\n  type: oidc\n  oidc:\n    authorize_url: https://id/a\n"
        "    token_url: https://id/t\n    userdata_url: https://id/u\n"
        "    allowed_groups: [jupyter]\n"
    )
    cfg = load(tmp_path, text, environ={"OAUTH_CLIENT_ID": "i", "OAUTH_CLIENT_SECRET": "s"})
    assert cfg.auth.oidc.client_id == "i"


def test_bad_value_from_the_environment_is_still_a_config_error(tmp_path):
    env = {"GITHUB_CLIENT_ID": "i", "GITHUB_CLIENT_SECRET": "s", "OAUTH_CALLBACK_URL": "nope"}
    error = refusal(tmp_path, GITHUB.format(extra=""), environ=env)
    assert error.key_path == "auth.github.callback_url"
