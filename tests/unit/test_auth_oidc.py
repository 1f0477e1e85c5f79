"""OIDC user names: an e-mail address counts only when the provider verified it.

The attack: at many providers anyone may type any address into their profile; with the
address as the user name, typing an admin's address would log in as that admin. On main the
name came from `preferred_username`, which some providers let users edit just as freely.
"""

from __future__ import annotations

import pytest

pytest.importorskip("oauthenticator")

from tornado import web
from traitlets.config import Config

from berth.auth.oidc import BerthOIDCAuthenticator
from berth.config import config_from_data, to_jupyterhub_config

OIDC = {
    "client_id": "berth",
    "client_secret": "s",
    "authorize_url": "https://id.example.org/auth",
    "token_url": "https://id.example.org/token",
    "userdata_url": "https://id.example.org/userinfo",
    "allow_all": True,
}


def authenticator(oidc: dict | None = None) -> BerthOIDCAuthenticator:
    """Configured from the translation of a berth.yaml, as in the hub."""
    translated = to_jupyterhub_config(
        config_from_data({"auth": {"type": "oidc", "oidc": {**OIDC, **(oidc or {})}}})
    )
    c = Config()
    for section in ("GenericOAuthenticator", "BerthOIDCAuthenticator"):
        for key, value in translated[section].items():
            if key != "client_secret":  # a SecretFile, read by the rendered config
                c[section][key] = value
    return BerthOIDCAuthenticator(config=c)


ADMIN = {"sub": "1", "preferred_username": "root", "email": "admin@example.org"}


def test_the_default_name_is_a_verified_email():
    auth = authenticator()
    assert auth.user_info_to_username({**ADMIN, "email_verified": True}) == "admin@example.org"
    assert auth.user_info_to_username({**ADMIN, "email_verified": "true"}) == "admin@example.org"


@pytest.mark.parametrize("verified", [False, "false", None, "yes", 1])
def test_an_unverified_email_is_refused(verified):
    """Fails on main (no check; and the default claim was preferred_username)."""
    info = dict(ADMIN) if verified is None else {**ADMIN, "email_verified": verified}
    with pytest.raises(web.HTTPError) as refused:
        authenticator().user_info_to_username(info)
    assert refused.value.status_code == 403


def test_the_operators_explicit_choices_stay_possible():
    assert authenticator({"username_claim": "sub"}).user_info_to_username(ADMIN) == "1"
    chosen = authenticator({"username_claim": "preferred_username"})
    assert chosen.user_info_to_username(ADMIN) == "root"
    unchecked = authenticator({"require_verified_email": False})
    assert unchecked.user_info_to_username(ADMIN) == "admin@example.org"
