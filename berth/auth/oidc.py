"""OpenID Connect logins whose user name is an e-mail address only when the provider verified it.

With ``username_claim = "email"``, an unverified address would let anyone who can type an
admin's address into their profile at the provider log in as that admin. OIDC providers say
whether they checked the address in the ``email_verified`` claim (OIDC Core, section 5.1);
this authenticator refuses the login unless it is true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Bool


def email_verified(user_info: Mapping[str, Any]) -> bool:
    # Some providers (AWS Cognito among them) send the boolean as a string.
    value = user_info.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")


class BerthOIDCAuthenticator(GenericOAuthenticator):
    require_verified_email = Bool(
        True,
        config=True,
        help="With username_claim 'email', refuse logins whose email_verified is not true.",
    )

    def user_info_to_username(self, user_info: dict[str, Any]) -> str:
        username: str = super().user_info_to_username(user_info)
        if (
            self.username_claim == "email"
            and self.require_verified_email
            and not email_verified(user_info)
        ):
            self.log.warning("Login refused for %s: email_verified is not true", username)
            raise web.HTTPError(403, "The identity provider has not verified this e-mail address.")
        return username
