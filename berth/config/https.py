"""The berth.yaml ``tls`` section: the operator's certificate, the self-signed one's names, or
a certificate obtained and renewed from an ACME authority (``tls.acme``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Len
from pydantic import BeforeValidator, Field, model_validator

from berth.config.base import Section
from berth.config.fields import FieldProblem, Hostname, HttpUrl, check_hostname, describe

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _check_email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL_RE.match(value.strip()):
        raise ValueError(
            f"expected an e-mail address such as admin@example.org, got {describe(value)}"
        )
    return value.strip()


def _acme_name(value: Any) -> str:
    name = check_hostname(value)
    if name.startswith("*."):
        raise ValueError(
            f"{name!r}: a wildcard needs a DNS-01 challenge, which Berth does not do; "
            "list each name instead"
        )
    return name


class ACMEConfig(Section):
    email: Annotated[str, BeforeValidator(_check_email)] = Field(
        ...,
        description="Address the certificate authority writes to about the account and "
        "expiring certificates.",
    )
    hostnames: Annotated[list[Annotated[str, BeforeValidator(_acme_name)]], Len(min_length=1)] = (
        Field(
            ...,
            description="DNS names the certificate is for (the first is its subject); each "
            "must point at this host, whose `http_port` the authority must reach.",
        )
    )
    directory: HttpUrl = Field(
        LETS_ENCRYPT,
        description="ACME directory URL of the certificate authority (default: Let's "
        "Encrypt's production endpoint).",
    )
    staging: bool = Field(
        False,
        description="Use Let's Encrypt's staging endpoint (untrusted certificates, high rate "
        "limits) instead of `directory`, to try a setup out.",
    )
    directory_ca: Path | None = Field(
        None,
        description="PEM file of a CA to trust for the directory's own HTTPS (a test "
        "authority such as Pebble), besides the system's CAs.",
    )
    http_port: int = Field(
        80,
        ge=1,
        le=65535,
        description="Host TCP port for HTTP-01 challenges; every other request there is "
        "redirected to HTTPS. The authority always connects to port 80: change it only behind "
        "a port forward or for tests.",
    )

    @model_validator(mode="after")
    def _one_directory(self) -> ACMEConfig:
        if self.staging and self.directory != LETS_ENCRYPT:
            raise FieldProblem("staging", "give either staging: true or a directory, not both")
        return self

    def directory_url(self) -> str:
        return LETS_ENCRYPT_STAGING if self.staging else self.directory


class TLSConfig(Section):
    cert: Path | None = Field(
        None,
        description="PEM certificate (chain) file of the operator, relative to berth.yaml. "
        "Without `cert` and `key`, Berth generates a self-signed certificate on first run.",
    )
    key: Path | None = Field(None, description="PEM private key file matching `cert`.")
    hostnames: list[Hostname] = Field(
        [],
        description="Extra DNS names or IP addresses for the self-signed certificate, besides "
        "the host's name, `localhost` and the host's addresses.",
    )
    acme: ACMEConfig | None = Field(
        None,
        description="Obtain and renew a trusted certificate from an ACME authority (Let's "
        "Encrypt) by itself; until the first one is issued the self-signed one is served.",
    )

    @model_validator(mode="after")
    def _pair(self) -> TLSConfig:
        if (self.cert is None) != (self.key is None):
            missing = "key" if self.key is None else "cert"
            raise FieldProblem(missing, "tls.cert and tls.key must be given together")
        if self.cert is not None and self.hostnames:
            raise FieldProblem(
                "hostnames",
                "only used for the self-signed certificate; "
                "remove it when tls.cert and tls.key are given",
            )
        if self.cert is not None and self.acme is not None:
            raise FieldProblem("acme", "give either tls.cert and tls.key or tls.acme, not both")
        return self
