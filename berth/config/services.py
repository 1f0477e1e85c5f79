"""Hub services: the idle culler Berth runs, and the operator's API clients."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from berth.config.base import Section
from berth.config.fields import FieldProblem, ServiceName

# JupyterHub's limits for API tokens (orm.APIToken.min_length, utils._TOKEN_MAX_LEN).
TOKEN_MIN, TOKEN_MAX = 8, 64


class IdleCullerConfig(Section):
    SERVICE_NAME: ClassVar[str] = "idle-culler"

    enabled: bool = Field(
        True, description="Run jupyterhub-idle-culler as a hub service to stop idle servers."
    )
    timeout: int = Field(
        3600, ge=0, description="Seconds without activity after which a server is stopped."
    )
    every: int = Field(300, ge=1, description="Seconds between two checks for idle servers.")
    max_age: int = Field(
        0,
        ge=0,
        description="Stop servers older than this many seconds even if active; 0: no limit.",
    )

    @model_validator(mode="after")
    def _timeout(self) -> IdleCullerConfig:
        if self.enabled and self.timeout == 0:
            raise FieldProblem(
                "timeout",
                "must be at least 1 while the culler is enabled "
                "(set enabled: false to keep idle servers)",
            )
        return self


def check_scope(scope: str) -> str:
    """A scope JupyterHub knows, with an optional ``!user=``-style filter."""
    # Imported here: jupyterhub.scopes pulls in the ORM, which a config load without
    # services should not pay for.
    from jupyterhub.scopes import scope_definitions

    name, bang, filter_ = scope.partition("!")
    if name not in scope_definitions or name == "(no_scope)":
        hint = " (custom scopes are not supported)" if name.startswith("custom:") else ""
        raise ValueError(f"unknown JupyterHub scope {scope!r}{hint}")
    kind, equals, target = filter_.partition("=")
    # "!user" alone means "the token's own user"; otherwise "!kind=name".
    plain = not equals and kind in ("user", "service", "server")
    named = bool(equals and target) and kind in ("user", "service", "group", "server")
    if bang and not (plain or named):
        raise ValueError(
            f"unknown filter in scope {scope!r}: use !user=NAME, !group=NAME, "
            "!server=USER/NAME or !service=NAME"
        )
    return scope


class ServiceConfig(Section):
    name: ServiceName = Field(description="Service name, shown in the hub and in its role.")
    scopes: list[str] = Field(
        min_length=1,
        description="JupyterHub scopes granted to the service's token, e.g. `admin:users`, "
        "`servers`, `read:users!group=students`.",
    )
    token: SecretStr | None = Field(
        None, description=f"The API token ({TOKEN_MIN} to {TOKEN_MAX} characters), inline."
    )
    token_file: Path | None = Field(
        None,
        description="A file holding the API token, relative to berth.yaml. It must be mode "
        "600 (readable by its owner only) or it is refused.",
    )

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, scopes: list[str]) -> list[str]:
        for index, scope in enumerate(scopes):
            try:
                check_scope(scope)
            except ValueError as exc:
                raise FieldProblem(str(index), str(exc)) from None
        return scopes

    @field_validator("token")
    @classmethod
    def _token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None:
            check_token(token.get_secret_value())
        return token

    @model_validator(mode="after")
    def _one_source(self) -> ServiceConfig:
        if (self.token is None) == (self.token_file is None):
            raise FieldProblem("token", "give exactly one of token and token_file")
        return self


def check_token(token: str) -> str:
    if not TOKEN_MIN <= len(token) <= TOKEN_MAX:
        raise ValueError(
            f"an API token must be {TOKEN_MIN} to {TOKEN_MAX} characters long "
            f"(this one has {len(token)}); generate one with "
            "`openssl rand -hex 32`"
        )
    if any(ch.isspace() for ch in token):
        raise ValueError("an API token cannot contain whitespace")
    return token
