"""No login under the name of one of Berth's own parts (``hub``, ``proxy``, …:
:data:`berth.names.RESERVED_USER_NAMES`): with the default name template such a user's server
container would be called like the hub's or the proxy's (``berth-hub``).

Every authenticator `berth up` configures mixes this in. The check runs where JupyterHub asks
whether an authenticated name is blocked, so it covers a form login and an OAuth callback alike,
and the user sees one message saying why. (Sign-up refuses these names before any account is
made: berth/auth/native.py; `berth users add` and berth.yaml refuse them too.)
"""

from __future__ import annotations

from typing import Any

from tornado import web

from berth.names import is_reserved_user_name, reserved_name_message


class RefuseReservedNames:
    """A mixin for a JupyterHub Authenticator (first in the bases)."""

    log: Any  # the Authenticator's

    def check_blocked_users(self, username: str, authentication: Any = None) -> Any:
        if is_reserved_user_name(username):
            self.log.warning("Login refused for %r: the name of one of Berth's parts", username)
            raise web.HTTPError(403, reserved_name_message(username))
        return super().check_blocked_users(username, authentication)  # type: ignore[misc]
