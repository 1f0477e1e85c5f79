"""Berth's NativeAuthenticator subclass against a real (in-memory) hub database.

The attacks: a stranger signs up with a name listed in berth.yaml (or one the hub knows, or
one that only looks like it) before the operator's account exists, or signs up with a name
the operator later lists as an admin. Each test shows first that upstream NativeAuthenticator
lets the attack through (so these tests fail on main, where the hub used it as is).
"""

from __future__ import annotations

import pytest

pytest.importorskip("nativeauthenticator")

from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator import handlers as native_handlers
from nativeauthenticator.orm import UserInfo
from traitlets.config import Config

from berth.auth import ledger
from berth.auth.native import BerthNativeAuthenticator, SignUpHandler, fold

PASSWORD = "a-long-unusual-passphrase"


@pytest.fixture
def db():
    session = orm.new_session_factory("sqlite://")()
    yield session
    session.close()


def config(admins=(), allowed=(), **native) -> Config:
    c = Config()
    c.Authenticator.admin_users = set(admins)
    c.Authenticator.allowed_users = set(allowed)
    c.Authenticator.allow_all = True
    c.NativeAuthenticator.minimum_password_length = 8
    for key, value in native.items():
        c.NativeAuthenticator[key] = value
    c.BerthNativeAuthenticator.reserved_names = {*admins, *allowed}
    return c


def berth_auth(db, **kwargs) -> BerthNativeAuthenticator:
    return BerthNativeAuthenticator(db=db, config=config(**kwargs))


def signed_up(db, name: str, authorized: bool = True) -> UserInfo:
    """An account as a sign-up leaves it (no record of the operator)."""
    info = UserInfo(username=name, password=b"x", is_authorized=authorized)
    db.add(info)
    db.commit()
    return info


def test_upstream_approves_a_listed_name_at_sign_up(db):
    """The hole itself, for reference: upstream approves `bob` because he is listed."""
    upstream = NativeAuthenticator(db=db, config=config(admins=["alice"], allowed=["bob"]))
    assert upstream.create_user("bob", PASSWORD).is_authorized is True
    assert upstream.create_user("alice", PASSWORD).is_authorized is True


@pytest.mark.parametrize(
    "attempt",
    [
        "bob",  # listed in users.allowed
        "alice",  # listed in users.admins
        "Bob",  # JupyterHub lowercases: the same user
        "ＢＯＢ",  # noqa: RUF001  fullwidth: another JupyterHub user that reads as bob
        "bob\u200b",  # a zero-width space: another user that looks the same
        "\u212aate",  # KELVIN SIGN: lowercases to the ASCII "kate"
    ],
)
def test_sign_up_cannot_take_a_reserved_name(db, attempt):
    """Fails on main: NativeAuthenticator approved a listed name at sign-up."""
    auth = berth_auth(db, admins=["alice"], allowed=["bob", "kate"])
    assert auth.signup_refusal(attempt) is not None
    assert auth.create_user(attempt, PASSWORD) is None
    assert db.query(UserInfo).count() == 0


def test_sign_up_cannot_take_a_name_the_hub_knows(db):
    """A user added on the admin page or through the API has no password yet: signing up with
    that name would take over their server and files once an admin approves (fails on main)."""
    db.add(orm.User(name="carl"))
    db.commit()
    auth = berth_auth(db)
    assert auth.create_user("carl", PASSWORD) is None
    assert auth.create_user("CARL", PASSWORD) is None


def test_sign_up_of_a_lookalike_of_an_existing_account_is_refused(db):
    signed_up(db, "dora")
    auth = berth_auth(db)
    assert auth.signup_refusal("ｄｏｒａ") is not None  # noqa: RUF001
    assert auth.signup_refusal("dora") is None  # upstream says "already in use"
    assert auth.create_user("dora", PASSWORD) is None


def test_an_unlisted_sign_up_waits_for_approval(db):
    auth = berth_auth(db, admins=["alice"], allowed=["bob"])
    made = auth.create_user("mallory", PASSWORD)
    assert made is not None and made.is_authorized is False
    assert auth.get_authed_users() == set()
    assert (
        berth_auth(db, open_signup=True).create_user("ola", PASSWORD).is_authorized is True
    )  # the operator's explicit choice still works


def test_a_sign_up_is_never_recorded_as_the_operators(db):
    ledger.record(db, "erin", "berth up")  # left over from a deleted account
    berth_auth(db).create_user("erin", PASSWORD)
    assert not ledger.made_by_operator(db, "erin")


def test_admin_rights_are_withheld_from_a_signed_up_account(db):
    """carol signed up before the operator listed her as admin: the hub must not make that
    account an admin at start (JupyterHub applies admin_users to its database then)."""
    signed_up(db, "carol")
    assert "carol" in NativeAuthenticator(db=db, config=config(admins=["carol"])).admin_users
    auth = berth_auth(db, admins=["carol", "admin"])
    assert auth.admin_users == {"admin"}


def test_admin_rights_stay_for_the_operators_accounts_and_existing_admins(db):
    signed_up(db, "carol")
    ledger.record(db, "carol", "berth users add")
    signed_up(db, "dave")
    db.add(orm.User(name="dave", admin=True))  # made admin by someone with admin rights
    db.commit()
    assert berth_auth(db, admins=["carol", "dave"]).admin_users == {"carol", "dave"}


def test_deleting_a_user_forgets_the_record(db):
    signed_up(db, "erin")
    ledger.record(db, "erin", "berth up")
    user = orm.User(name="erin")
    db.add(user)
    db.commit()
    berth_auth(db).delete_user(user)
    assert db.query(UserInfo).count() == 0
    assert not ledger.made_by_operator(db, "erin")


def test_the_sign_up_page_is_berths():
    handlers = dict(
        BerthNativeAuthenticator(add_new_table=False, config=config()).get_handlers(None)
    )
    assert handlers["/signup"] is SignUpHandler
    assert issubclass(SignUpHandler, native_handlers.SignUpHandler)


def test_fold():
    assert fold("ＢｏＢ") == fold("Bob") == "bob"  # noqa: RUF001
    assert fold("straße") == fold("STRASSE")
