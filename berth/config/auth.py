"""The ``auth`` section of berth.yaml: who may log in, and how.

``native`` keeps accounts in the hub (jupyterhub-nativeauthenticator, bcrypt-hashed passwords);
``github`` and ``oidc`` hand the login to an identity provider through OAuthenticator. OAuth
credentials may be written inline, or left out and found by the loader in the environment or
in an ``env_file`` (the seed deployment's ``oauth.env``); see berth/config/resolve.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from berth.config.base import Section
from berth.config.fields import FieldProblem, HttpUrl


class NativeAuth(Section):
    enable_signup: bool = Field(
        True,
        description="Show a sign-up page where people can request an account. New accounts "
        "wait for an admin's approval on /hub/authorize, unless `open_signup` is true. Names "
        "in `users.allowed` and `users.admins`, and names the hub knows already, cannot be "
        "signed up for: `berth up` makes those accounts itself.",
    )
    open_signup: bool = Field(
        False,
        description="Let anyone who signs up log in at once, without approval. Only for "
        "closed networks or short-lived events.",
    )
    minimum_password_length: int = Field(
        8, ge=1, le=1024, description="Shortest password accepted at sign-up and on change."
    )
    check_common_password: bool = Field(
        True, description="Refuse passwords found in a list of commonly used passwords."
    )
    allowed_failed_logins: int = Field(
        10,
        ge=0,
        description="Failed logins in a row after which an account is locked for "
        "`seconds_before_next_try`; 0 never locks.",
    )
    seconds_before_next_try: int = Field(
        600, ge=1, description="How long (seconds) a locked account stays locked."
    )

    @model_validator(mode="after")
    def _signup_consistent(self) -> NativeAuth:
        if self.open_signup and not self.enable_signup:
            raise FieldProblem(
                "open_signup", "open_signup: true needs enable_signup: true (no sign-up page)"
            )
        return self


class OAuthClient(Section):
    """What every OAuth provider needs; subclasses name the environment variables."""

    ENV: ClassVar[dict[str, str]] = {}

    client_id: str | None = Field(
        None,
        min_length=1,
        description="OAuth client ID. If absent, taken from the environment or `env_file`.",
    )
    client_secret: SecretStr | None = Field(
        None,
        description="OAuth client secret. Never printed; passed to the hub as a file, not in "
        "its config. If absent, taken from the environment or `env_file`.",
    )
    callback_url: HttpUrl | None = Field(
        None,
        description="The redirect URL registered with the provider, "
        "`https://<host>:<port>/hub/oauth_callback`. If absent, taken from the environment or "
        "`env_file`, else derived from the address the browser used.",
    )
    env_file: Path | None = Field(
        None,
        description="A file of `KEY=VALUE` lines (the seed's `oauth.env`) holding the client "
        "ID, secret and callback URL; relative to berth.yaml; must be mode 600.",
    )
    allow_all: bool = Field(
        False,
        description="Let every account of the provider log in. Off by default: list users "
        "(`users.*`) or provider groups instead.",
    )

    def has_allow_rule(self) -> bool:
        """True if this section alone lets somebody in (subclasses add provider groups)."""
        return self.allow_all


class GitHubAuth(OAuthClient):
    ENV: ClassVar[dict[str, str]] = {
        "client_id": "GITHUB_CLIENT_ID",
        "client_secret": "GITHUB_CLIENT_SECRET",
        "callback_url": "OAUTH_CALLBACK_URL",
    }

    allowed_organizations: list[str] = Field(
        [],
        description="Let members of these GitHub organizations (`org`) or teams (`org:team`) "
        "log in. Berth asks GitHub for the `read:org` scope so private membership counts.",
    )

    github_url: HttpUrl | None = Field(
        None,
        description="Base URL of a GitHub Enterprise Server (default: github.com); the "
        "authorize, token and API URLs follow from it.",
    )
    allow_http: bool = Field(
        False,
        description="Accept an `http://` `github_url`. Only for a test server on a private "
        "network: tokens would cross the network in clear text.",
    )

    def has_allow_rule(self) -> bool:
        return self.allow_all or bool(self.allowed_organizations)

    @model_validator(mode="after")
    def _https_server(self) -> GitHubAuth:
        if self.github_url and not self.allow_http and urlsplit(self.github_url).scheme != "https":
            raise FieldProblem(
                "github_url", "must be an https:// URL (set allow_http: true for a test server)"
            )
        return self


class OIDCAuth(OAuthClient):
    ENV: ClassVar[dict[str, str]] = {
        "client_id": "OAUTH_CLIENT_ID",
        "client_secret": "OAUTH_CLIENT_SECRET",
        "callback_url": "OAUTH_CALLBACK_URL",
    }

    authorize_url: HttpUrl = Field(
        description="The provider's authorization endpoint (`authorization_endpoint` in its "
        "`/.well-known/openid-configuration`).",
    )
    token_url: HttpUrl = Field(description="The provider's token endpoint (`token_endpoint`).")
    userdata_url: HttpUrl = Field(
        description="The provider's userinfo endpoint (`userinfo_endpoint`)."
    )
    username_claim: str = Field(
        "email",
        min_length=1,
        description="The userinfo claim that becomes the JupyterHub user name. The default, "
        "`email`, is accepted only when the provider says it verified the address "
        "(`require_verified_email`). `preferred_username` is only safe with a provider that "
        "does not let users change it: whoever renames themselves to an admin's name would "
        "log in as that admin. `sub` never changes but is an opaque ID.",
    )
    require_verified_email: bool = Field(
        True,
        description="With `username_claim: email`, refuse a login unless the provider's "
        "`email_verified` claim is true. Turn off only for a provider that does not send "
        "`email_verified` and lets nobody set an address they do not own.",
    )
    scope: list[str] = Field(
        ["openid", "profile", "email"], description="Scopes requested from the provider."
    )
    login_service: str = Field(
        "OpenID Connect",
        min_length=1,
        description="Provider name on the login button ('Sign in with ...').",
    )
    groups_claim: str = Field(
        "groups",
        min_length=1,
        description="The userinfo claim listing the user's groups; used by `allowed_groups` "
        "and `admin_groups`.",
    )
    allowed_groups: list[str] = Field(
        [], description="Let members of these provider groups log in."
    )
    admin_groups: list[str] = Field(
        [], description="Members of these provider groups are JupyterHub admins."
    )
    allow_http: bool = Field(
        False,
        description="Accept `http://` provider URLs. Only for a test provider on a private "
        "network: tokens would cross the network in clear text.",
    )
    validate_server_cert: bool = Field(
        True,
        description="Verify the provider's TLS certificate. Turn off only for a test provider "
        "with a self-signed certificate.",
    )

    def has_allow_rule(self) -> bool:
        return self.allow_all or bool(self.allowed_groups) or bool(self.admin_groups)

    @model_validator(mode="after")
    def _https_endpoints(self) -> OIDCAuth:
        if self.allow_http:
            return self
        for key in ("authorize_url", "token_url", "userdata_url"):
            if urlsplit(getattr(self, key)).scheme != "https":
                raise FieldProblem(
                    key, "must be an https:// URL (set allow_http: true for a test provider)"
                )
        return self


AuthType = Literal["native", "github", "oidc"]


class AuthConfig(Section):
    type: AuthType = Field(
        "native",
        description="`native`: accounts with passwords kept by the hub. `github`: GitHub "
        "OAuth. `oidc`: any OpenID Connect provider (Keycloak, Authentik, Google, ...).",
    )
    native: NativeAuth = Field(NativeAuth(), description="Settings for `type: native`.")
    github: GitHubAuth | None = Field(None, description="Settings for `type: github`.")
    oidc: OIDCAuth | None = Field(
        None, description="Settings for `type: oidc` (required for that type)."
    )

    @model_validator(mode="before")
    @classmethod
    def _github_section_optional(cls, data: Any) -> Any:
        # GitHub needs nothing that cannot come from the environment, so `type: github` alone
        # is a complete section; OIDC needs its endpoints, so its section stays required.
        if isinstance(data, dict) and data.get("type") == "github" and data.get("github") is None:
            data = {**data, "github": {}}
        return data

    @model_validator(mode="after")
    def _sections_match_type(self) -> AuthConfig:
        # Compared with the defaults (not with what was written) so that a dumped and
        # re-validated config, which spells out every section, passes too.
        unused = {"native": NativeAuth(), "github": None, "oidc": None}
        for name, default in unused.items():
            if name != self.type and getattr(self, name) != default:
                raise FieldProblem(
                    name,
                    f"settings for '{name}' given but auth.type is '{self.type}': "
                    f"set auth.type: {name} or remove auth.{name}",
                )
        if self.type == "oidc" and self.oidc is None:
            raise FieldProblem(
                "oidc",
                "auth.type oidc needs this section with authorize_url, token_url and userdata_url",
            )
        return self

    @property
    def oauth(self) -> OAuthClient | None:
        """The active OAuth section, or None for native accounts."""
        return {"github": self.github, "oidc": self.oidc}.get(self.type)
