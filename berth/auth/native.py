"""Local accounts whose names the operator keeps: NativeAuthenticator without its two holes.

Upstream NativeAuthenticator approves a sign-up at once when the name is in ``allowed_users``
or ``admin_users``, so the first stranger to sign up as a listed name *is* that user, and an
admin's name could be taken in the seconds between the hub answering and `berth up` making the
admin's account. Here:

- a sign-up never approves itself (only ``open_signup`` does that);
- sign-up and login refuse the names of Berth's own parts (``hub``, ``proxy``, …:
  berth/auth/reserved.py), whose server containers would be called like Berth's;
- sign-up refuses every reserved name (``reserved_names``: the names in berth.yaml, which
  `berth up` makes accounts for), every name the hub knows already (added on the admin page or
  through the API, with or without a password), and names that differ from those only by case
  or Unicode compatibility forms (fullwidth ``BOB``, ``Bob``); names with invisible or control
  characters are refused too, so ``bob\\u200b`` cannot pass for ``bob``;
- an account made by a sign-up is never made an admin through ``admin_users``: the hub drops
  such names from it at start (berth up then says what to do), see berth/auth/ledger.py.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator import handlers as native_handlers
from nativeauthenticator.orm import UserInfo
from traitlets import Set, Unicode

from berth.auth import ledger
from berth.auth.nostatsd import statsd_of
from berth.auth.reserved import RefuseReservedNames
from berth.names import is_reserved_user_name, reserved_name_message

RESERVED_MESSAGE = (
    "The name {name!r} is kept for an account that the operator creates, or is too close to "
    "the name of an existing user. If it is your name, ask the operator for your account; "
    "otherwise choose another name."
)
INVISIBLE_MESSAGE = "The name {name!r} contains invisible or control characters: choose another."


def fold(name: str) -> str:
    """`name` reduced for comparison: compatibility forms unified (NFKC) and case folded, so
    that fullwidth ``BOB``, ``Bob`` and ``bob`` are one name."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def has_invisible(name: str) -> bool:
    """Control, format (zero-width), private-use or unassigned characters, or whitespace."""
    return any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in name)


class BerthNativeAuthenticator(RefuseReservedNames, NativeAuthenticator):
    admin_users: set[str]  # JupyterHub's trait (its classes are untyped): declared for mypy

    reserved_names = Set(
        Unicode(),
        config=True,
        help="Names that sign-up must not take: the operator's tools make these accounts.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.db is not None:  # the hub's own instance (helpers make one for its rules only)
            self._withhold_admin_from_signups()

    def add_new_table(self) -> None:
        super().add_new_table()
        ledger.ensure_table(self.db)

    # -- admin rights ---------------------------------------------------------------------------

    def _withhold_admin_from_signups(self) -> None:
        """Drop from ``admin_users`` every name whose account was made by a sign-up.

        Runs before JupyterHub applies ``admin_users`` to its database (init_users), so a name
        newly listed as admin never turns a stranger's existing account into an admin. A user
        who is an admin already (made so by someone with admin rights, or before Berth kept
        its record) keeps the rights: nothing new is given.
        """
        withheld: set[str] = set()
        for listed in self.admin_users:
            name = self.normalize_username(listed)
            if self.get_user(name) is None or ledger.made_by_operator(self.db, name):
                continue
            hub_user = orm.User.find(self.db, name)
            if hub_user is None or not hub_user.admin:
                withheld.add(listed)
        if withheld:
            self.log.warning(
                "Not making %s admin: the account was made by a sign-up, not by Berth "
                "(`berth up` says what to do)",
                ", ".join(sorted(withheld)),
            )
            self.admin_users = self.admin_users - withheld

    # -- sign-up --------------------------------------------------------------------------------

    def signup_refusal(self, username: str) -> str | None:
        """Why sign-up must not make an account called `username`; None if it may."""
        name = self.normalize_username(username)
        if has_invisible(name):
            return INVISIBLE_MESSAGE.format(name=name)
        if is_reserved_user_name(name):
            return reserved_name_message(name)
        kept = self.reserved_names | self.admin_users | self.allowed_users
        known = kept | {row.name for row in self.db.query(orm.User.name)}
        accounts = {row.username for row in self.db.query(UserInfo.username)}
        folded = fold(name)
        if any(fold(other) == folded for other in known):
            return RESERVED_MESSAGE.format(name=name)
        if name not in accounts and any(fold(other) == folded for other in accounts):
            return RESERVED_MESSAGE.format(name=name)
        return None  # (an account of exactly this name: upstream says "already in use")

    def create_user(self, username: str, password: str, **kwargs: Any) -> Any:
        if self.signup_refusal(username) is not None:
            return None
        user = super().create_user(username, password, **kwargs)
        if user is not None:
            ledger.forget(self.db, user.username)  # a sign-up is never the operator's account
        return user

    def get_authed_users(self) -> set[str]:
        """Approved accounts only. Upstream adds the allowed and admin names, which approves a
        sign-up with such a name at once: whoever signs up first would get it."""
        return {info.username for info in UserInfo.all_users(self.db) if info.is_authorized}

    def delete_user(self, user: Any) -> Any:
        result = super().delete_user(user)
        ledger.forget(self.db, user.name)
        return result

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        ours = {
            native_handlers.SignUpHandler: SignUpHandler,
            native_handlers.LoginHandler: LoginHandler,
        }
        return [(path, ours.get(handler, handler)) for path, handler in super().get_handlers(app)]


class LoginHandler(native_handlers.LoginHandler):
    """Upstream's login page, able to log in on JupyterHub 6 (berth/auth/nostatsd.py)."""

    @property
    def statsd(self) -> Any:
        return statsd_of(self.settings)


class SignUpHandler(native_handlers.SignUpHandler):
    """The sign-up page, saying plainly why a reserved name is refused."""

    async def post(self) -> None:
        authenticator = self.authenticator
        if authenticator.enable_signup:
            username = self.get_body_argument("username", "", strip=False)
            refusal = authenticator.signup_refusal(username)
            if refusal is not None:
                self.log.warning("Sign-up refused for the name %r", username)
                html = await self.render_template(
                    "signup.html",
                    ask_email=authenticator.ask_email_on_signup,
                    result_message=refusal,
                    alert="alert-danger",
                    two_factor_auth=authenticator.allow_2fa,
                    recaptcha_key=authenticator.recaptcha_key,
                    tos=authenticator.tos,
                )
                self.finish(html)
                return
        await super().post()
