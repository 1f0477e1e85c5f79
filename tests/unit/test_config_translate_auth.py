"""berth.yaml's `auth` and `users` in -> the authenticator's JupyterHub config out."""

from oauth_clients import GITHUB, OIDC

from berth.config import SecretFile, config_from_data, to_jupyterhub_config


def apply(overrides: dict) -> dict:
    return to_jupyterhub_config(config_from_data(overrides))


def test_auth_default_is_native_without_open_signup():
    c = apply({})
    assert c["JupyterHub"]["authenticator_class"] == "berth-native"
    assert c["Authenticator"] == {"admin_users": set(), "allow_all": True}
    assert c["BerthNativeAuthenticator"] == {"reserved_names": set()}
    native = c["NativeAuthenticator"]
    assert native["open_signup"] is False
    assert native["enable_signup"] is True
    assert native["minimum_password_length"] == 8
    assert native["check_common_password"] is True


def test_native_users_and_open_signup():
    c = apply(
        {
            "auth": {"native": {"open_signup": True, "allowed_failed_logins": 0}},
            "users": {"allowed": ["Jenny", "guido"], "admins": ["jtyberg"]},
        }
    )
    assert c["NativeAuthenticator"]["open_signup"] is True
    assert c["NativeAuthenticator"]["allowed_failed_logins"] == 0
    assert c["Authenticator"]["allowed_users"] == {"jenny", "guido"}
    assert c["Authenticator"]["admin_users"] == {"jtyberg"}
    # Every listed name is kept from sign-up (berth up makes those accounts).
    assert c["BerthNativeAuthenticator"] == {"reserved_names": {"jenny", "guido", "jtyberg"}}


def test_auth_github():
    c = apply(
        {
            "auth": {
                "type": "github",
                "github": {
                    **GITHUB,
                    "callback_url": "https://hub.example.org:8443/hub/oauth_callback",
                    "allowed_organizations": ["jupyterhub", "org:team"],
                },
            }
        }
    )
    assert c["JupyterHub"]["authenticator_class"] == "berth-github"
    gh = c["GitHubOAuthenticator"]
    assert gh["client_id"] == "gh-id"
    assert gh["client_secret"] == SecretFile("/srv/berth/data/secrets/oauth_client_secret")
    assert gh["oauth_callback_url"] == "https://hub.example.org:8443/hub/oauth_callback"
    assert gh["allowed_organizations"] == {"jupyterhub", "org:team"}
    assert gh["scope"] == ["read:org"]
    assert gh["allow_all"] is False
    assert c["Authenticator"]["allow_existing_users"] is True
    assert c["Authenticator"]["enable_auth_state"] is True
    assert "allow_all" not in c["Authenticator"]
    assert "NativeAuthenticator" not in c


def test_auth_github_users_without_callback():
    c = apply({"auth": {"type": "github", "github": GITHUB}, "users": {"allowed": ["guido"]}})
    assert "oauth_callback_url" not in c["GitHubOAuthenticator"]
    assert "allowed_organizations" not in c["GitHubOAuthenticator"]
    assert c["Authenticator"]["allowed_users"] == {"guido"}


def test_auth_oidc():
    c = apply({"auth": {"type": "oidc", "oidc": {**OIDC, "allow_all": True}}})
    assert c["JupyterHub"]["authenticator_class"] == "berth-oidc"
    assert c["BerthOIDCAuthenticator"] == {"require_verified_email": True}
    oidc = c["GenericOAuthenticator"]
    assert oidc["authorize_url"] == "https://id.example.org/auth"
    assert oidc["token_url"] == "https://id.example.org/token"
    assert oidc["userdata_url"] == "https://id.example.org/userinfo"
    assert oidc["username_claim"] == "email"  # checked against email_verified
    assert oidc["scope"] == ["openid", "profile", "email"]
    assert oidc["login_service"] == "OpenID Connect"
    assert oidc["validate_server_cert"] is True
    assert oidc["allow_all"] is True
    assert "manage_groups" not in oidc


def test_auth_oidc_the_operators_explicit_username_claim():
    c = apply(
        {
            "auth": {
                "type": "oidc",
                "oidc": {
                    **OIDC,
                    "allow_all": True,
                    "username_claim": "preferred_username",
                    "require_verified_email": False,
                },
            }
        }
    )
    assert c["GenericOAuthenticator"]["username_claim"] == "preferred_username"
    assert c["BerthOIDCAuthenticator"] == {"require_verified_email": False}


def test_auth_oidc_groups():
    c = apply(
        {
            "auth": {
                "type": "oidc",
                "oidc": {
                    **OIDC,
                    "groups_claim": "roles",
                    "allowed_groups": ["jupyter"],
                    "admin_groups": ["ops"],
                },
            }
        }
    )
    oidc = c["GenericOAuthenticator"]
    assert oidc["manage_groups"] is True
    assert oidc["auth_state_groups_key"] == "oauth_user.roles"
    assert (oidc["allowed_groups"], oidc["admin_groups"]) == ({"jupyter"}, {"ops"})
