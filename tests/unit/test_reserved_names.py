"""No user may be called like one of Berth's own parts (`hub`, `proxy`, …): with the default
name template a user `hub` gets a server container `berth-hub`, the hub's own name. Refused by
berth.yaml, `berth users add`, sign-up and the login of every authenticator `berth up` sets up;
and `berth down` finds the service's containers by their role label, never by name.

On main all of these let the name through (and `berth down` went by name).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_run import run_berth
from jupyterhub import orm
from tornado import web
from traitlets.config import Config

from berth.auth.github import BerthGitHubAuthenticator
from berth.auth.native import BerthNativeAuthenticator
from berth.auth.oidc import BerthOIDCAuthenticator
from berth.config.errors import ConfigError
from berth.config.load import load_config
from berth.config.userlist import UserlistError, parse_userlist
from berth.deploy import layout, status
from berth.deploy.fence import FENCE_SERVICE
from berth.deploy.swarm_plan import SERVICE_NAMES
from berth.names import (
    RESERVED_USER_NAMES,
    escape,
    is_reserved_user_name,
    render,
    reserved_name_message,
    template_namespace,
)
from berth.spawner import ContainerSpawner

BERTHS_OWN = [
    layout.HUB_CONTAINER, layout.PROXY_CONTAINER, layout.GUARD_CONTAINER,
    layout.FIREWALL_CONTAINER, layout.ACME_CONTAINER, layout.BACKUP_CONTAINER,
    layout.CLI_SERVICE, *SERVICE_NAMES.values(), FENCE_SERVICE,
]  # fmt: skip


def test_every_name_of_berths_own_parts_and_roles_is_reserved() -> None:
    parts = {name.removeprefix(f"{layout.SPAWNER_PREFIX}-") for name in BERTHS_OWN}
    roles = {*status.DOWN_ORDER, *SERVICE_NAMES}
    assert parts | roles == RESERVED_USER_NAMES


def test_with_the_default_template_these_users_would_get_berths_own_container_names() -> None:
    """Why the names are kept: the collision itself (for names without a `-`, which is
    escaped; those are kept all the same)."""
    template = ContainerSpawner.name_template.default_value
    clashing = {
        user
        for user in RESERVED_USER_NAMES
        if render(template, template_namespace(layout.SPAWNER_PREFIX, user)) in BERTHS_OWN
    }
    assert clashing == {n for n in RESERVED_USER_NAMES if escape(n) == n} - {"guard"}
    assert {"hub", "proxy", "firewall", "acme", "backup", "registry", "fence"} <= clashing


@pytest.mark.parametrize(
    "name", ["hub", "Hub", "PROXY", "\uff48\uff55\uff42", "engine-guard", "fence"]
)
def test_reserved_up_to_case_and_compatibility_forms(name: str) -> None:
    assert is_reserved_user_name(name)


@pytest.mark.parametrize("name", ["hubert", "my-hub", "hub2", "proxy-", "alice", "engineguard"])
def test_other_names_are_free(name: str) -> None:
    assert not is_reserved_user_name(name)


def test_berth_yaml_and_the_userlist_refuse_them_with_the_message(tmp_path: Path) -> None:
    config = tmp_path / "berth.yaml"
    config.write_text("users:\n  admins: [boss]\n  allowed: [proxy]\n")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert reserved_name_message("proxy") in str(refused.value)
    with pytest.raises(UserlistError, match="is reserved: Berth's own parts"):
        parse_userlist("alice\nhub admin\n")


def berth(*args: str, config: Path) -> tuple[int, str]:
    env = {"DOCKER_HOST": "unix:///nonexistent/berth-reserved.sock", "BERTH_CONFIG": str(config)}
    code, _, stderr = run_berth(*args, env=env)
    return code, stderr


def test_berth_users_add_refuses_them_before_the_engine(tmp_path: Path) -> None:
    config = tmp_path / "berth.yaml"
    config.write_text("auth:\n  type: native\n")
    code, stderr = berth("users", "add", "Hub", config=config)
    assert code == 1
    assert stderr.strip() == f"error: invalid user name 'Hub': {reserved_name_message('hub')}"
    # Removing one (made before this check existed) stays possible: it goes to the engine.
    code, stderr = berth("users", "remove", "hub", config=config)
    assert code == 1 and "cannot reach the Docker engine" in stderr


def native() -> BerthNativeAuthenticator:
    c = Config()
    c.Authenticator.allow_all = True
    return BerthNativeAuthenticator(db=orm.new_session_factory("sqlite://")(), config=c)


@pytest.mark.parametrize(
    "authenticator",
    [native, BerthOIDCAuthenticator, BerthGitHubAuthenticator],
    ids=["native", "oidc", "github"],
)
def test_every_authenticator_refuses_a_login_as_one_with_one_clear_message(authenticator) -> None:
    auth = authenticator()
    with pytest.raises(web.HTTPError) as refused:
        auth.check_blocked_users("proxy", {"name": "proxy"})
    assert refused.value.status_code == 403
    assert refused.value.log_message == reserved_name_message("proxy")
    assert auth.check_blocked_users("alice", {"name": "alice"}) is True


def test_sign_up_refuses_them_with_the_same_message() -> None:
    auth = native()
    assert auth.signup_refusal("hub") == reserved_name_message("hub")
    assert auth.signup_refusal("Backup") == reserved_name_message("backup")


def labels(deploy_role: str | None = None, **more: str) -> dict[str, str]:
    found = dict(more)
    if deploy_role is not None:
        found[layout.LABEL_ROLE] = deploy_role
    return found


def test_down_finds_the_service_by_role_label_in_order_and_never_a_users_server() -> None:
    found = [
        labels("guard"),
        labels(**{"berth.role": "single-user", "berth.user": "hub"}),  # a user's `berth-hub`
        labels("proxy"),
        labels("hub"),  # the hub replaced by `berth up`, kept as berth-hub-previous
        labels("future-part"),
        labels("hub"),
        labels("firewall"),
        labels("guard", **{"berth.role": "single-user"}),  # a server dressed as the guard
    ]
    order = status.down_order(found)
    assert [found[i][layout.LABEL_ROLE] for i in order] == [
        "hub", "hub", "proxy", "firewall", "future-part", "guard",
    ]  # fmt: skip
    assert 1 not in order and 7 not in order
