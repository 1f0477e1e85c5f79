"""OpenID Connect logins whose user name is an e-mail address only when the provider verified it.

With ``username_claim = "email"``, an unverified address would let anyone who can type an
admin's address into their profile at the provider log in as that admin. OIDC providers say
whether they checked the address in the ``email_verified`` claim (OIDC Core, section 5.1);
this authenticator refuses the login unless it is true.

It also says plainly what went wrong when the provider's token endpoint refuses the hub
(OAuthenticator lets the HTTP error through, and JupyterHub answers with a bare 500): a wrong
client ID or secret is the operator's to fix, an expired or replayed code the user's to retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Bool

from berth.auth.reserved import RefuseReservedNames

# What the user sees for the token endpoint's refusals (RFC 6749, section 5.2), by error code.
CLIENT_REFUSED = (
    "The identity provider refused this hub's client credentials, so nobody can log in "
    "right now. This is not your account's fault: tell the operator, who must check "
    "auth.oidc's client_id and client_secret in berth.yaml."
)
CODE_REFUSED = (
    "The identity provider did not accept this login any more (it took too long, or the "
    "page was reloaded). Log in again."
)
TOKEN_REFUSALS = {
    "invalid_client": (503, CLIENT_REFUSED),
    "unauthorized_client": (503, CLIENT_REFUSED),
    "invalid_grant": (400, CODE_REFUSED),
}


def email_verified(user_info: Mapping[str, Any]) -> bool:
    # Some providers (AWS Cognito among them) send the boolean as a string.
    value = user_info.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def token_error(error: HTTPClientError) -> str:
    """The ``error`` code of a token endpoint's refusal, or "" when its body has none."""
    body = error.response.body if error.response is not None else b""
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return ""
    return str(answer.get("error", "")) if isinstance(answer, dict) else ""


class BerthOIDCAuthenticator(RefuseReservedNames, GenericOAuthenticator):
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

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> Any:
        try:
            return await super().get_token_info(handler, params)
        except HTTPClientError as error:
            code = token_error(error) if error.code in (400, 401) else ""
            if code not in TOKEN_REFUSALS:
                raise
            status, message = TOKEN_REFUSALS[code]
            # The provider's words go to the log (never a secret: its error body has none).
            self.log.error("The token endpoint refused the hub: %s %s", error.code, code)
            raise web.HTTPError(status, message) from None
