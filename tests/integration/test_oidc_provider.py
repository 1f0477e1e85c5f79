"""OIDC logins against a real, certified OpenID provider (node-oidc-provider, tests/real_oidc.py).

A hub of tests/integration/hub_harness.py (a JupyterHub process, CHP beside it) runs with the
authenticator settings `berth up` writes for this berth.yaml ``auth`` section (translated by
berth.config, rendered as in the hub container, the client secret and auth-state key read from
mode-600 files); the provider runs on 127.0.0.1. The browser is ``requests`` walking the
provider's own sign-in and consent pages. What is checked: a login by name, by group and as an
admin by group; a user in no allowed group refused; an unverified address refused; a wrong
client secret answered with a page that says so (not a 500); an expired access token sending the
user back to the login.

tests/integration/test_oauth.py keeps the hand-written provider (tests/oauth_provider/) for
what this one cannot play: GitHub's API, and the OIDC deployment under `berth up` (its secret
handling and the hub reaching the provider over the Docker network).
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from hub_harness import Hub, free_port
from hub_marks import NEEDS_PROXY
from oauth_setup import FormParser
from real_oidc import RealProvider, node_available, real_provider

from berth.auth.oidc import CLIENT_REFUSED
from berth.config import config_from_data
from berth.config.render import render_config_py
from berth.config.runtime import HubRuntime
from berth.config.translate import to_jupyterhub_config

pytestmark = [
    pytest.mark.integration,
    NEEDS_PROXY,
    pytest.mark.skipif(not node_available(), reason="node and npm are not on PATH"),
]

CLIENT_ID = "berth-hub"
# Seconds: erin's access tokens. Her login and her first request to the hub must fit in it
# (the hub checks the token at requests past auth_refresh_age, 2 s): a few seconds was a
# bet on the speed of a loaded machine; the expiry is waited for either way.
SHORT_LIVED = 15
# alice is allowed by name, bob by the group staff, dave is an admin by the group ops; mallory
# is a genuine account in no allowed group; trudy is in staff but typed dave's address into her
# profile, unverified.
USERS = {
    "alice": {"name": "Alice", "groups": ["research"]},
    "bob": {"name": "Bob", "groups": ["staff"]},
    "dave": {"name": "Dave", "groups": ["ops"]},
    "erin": {"name": "Erin", "groups": ["staff"]},
    "walt": {"name": "Walt", "groups": ["staff"]},
    "mallory": {"name": "Mallory", "groups": ["guests"]},
    "trudy": {"name": "Trudy", "groups": ["staff"], "email": "dave@example.org",
              "email_verified": False},
}  # fmt: skip


class Setup:
    def __init__(self, hub: Hub, provider: RealProvider, secret_file: Path, secret: str) -> None:
        self.hub, self.provider = hub, provider
        self.secret_file, self.secret = secret_file, secret
        self.callback = f"{hub.url}/hub/oauth_callback"


def hub_config(hub: Hub, provider: RealProvider, secrets_dir: Path) -> str:
    """The auth settings `berth up` renders for this berth.yaml (hub-side paths made local)."""
    berth_yaml = {
        "auth": {
            "type": "oidc",
            "oidc": {
                "client_id": CLIENT_ID,
                "client_secret": "read from the secret file",
                "callback_url": f"{hub.url}/hub/oauth_callback",
                "authorize_url": provider.authorize_url,
                "token_url": provider.token_url,
                "userdata_url": provider.userinfo_url,
                "allow_http": True,
                "login_service": "Berth Test OP",
                "allowed_groups": ["staff"],
                "admin_groups": ["ops"],
            },
        },
        "users": {"allowed": ["alice@example.org"]},
    }
    runtime = HubRuntime(
        secrets_dir=str(secrets_dir), crypt_key_file=str(secrets_dir / "crypt_key")
    )
    translated = to_jupyterhub_config(config_from_data(berth_yaml), runtime)
    auth = {
        section: translated[section]
        for section in ("Authenticator", "GenericOAuthenticator", "BerthOIDCAuthenticator",
                        "CryptKeeper")
    }  # fmt: skip
    auth["JupyterHub"] = {"authenticator_class": translated["JupyterHub"]["authenticator_class"]}
    # Check the provider's tokens at every request older than 2 s (JupyterHub's default: 5 min).
    auth["Authenticator"] = {**auth["Authenticator"], "auth_refresh_age": 2}
    rendered = render_config_py(auth)
    return rendered.replace("{", "{{").replace("}", "}}")  # the harness formats its config


def private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("oidc-real")
    secret = "oidc-" + secrets.token_hex(24)
    hub = Hub(workdir / "hub")
    idp_config = {
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "redirect_uris": [f"{hub.url}/hub/oauth_callback"],
            }
        ],
        "users": USERS,
        "short_lived": {"erin": SHORT_LIVED},
        "short_lived_codes": {"walt": 1},
    }
    # free_port never hands out a port twice: not one of the three the hub picked just before.
    with real_provider(workdir / "idp", free_port(), idp_config) as provider:
        secrets_dir = workdir / "secrets"
        secrets_dir.mkdir(mode=0o700)
        private(secrets_dir / "oauth_client_secret", secret)
        private(secrets_dir / "crypt_key", secrets.token_hex(32))
        hub.spawner_config = hub_config(hub, provider, secrets_dir)
        try:
            yield Setup(hub.start(), provider, secrets_dir / "oauth_client_secret", secret)
        finally:
            hub.cleanup()


def browser() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # only 127.0.0.1 here
    return session


def log_in(setup: Setup, login: str, session: requests.Session | None = None, linger: float = 0):
    """Hub → the provider's sign-in and consent pages → the hub's callback (not followed),
    `linger` seconds after the provider sent the browser there. Returns the browser and the
    hub's answer on the callback."""
    session = session or browser()
    answer = session.get(
        f"{setup.hub.url}/hub/oauth_login", params={"next": "/hub/home"}, timeout=30,
        allow_redirects=False,
    )  # fmt: skip
    for _ in range(12):  # bounded: sign-in, consent and their redirects
        if answer.status_code in (302, 303):
            target = urljoin(answer.url, answer.headers["Location"])
            if target.startswith(setup.callback + "?"):
                time.sleep(linger)
                return session, session.get(target, timeout=60, allow_redirects=False)
            assert target.startswith(setup.provider.issuer + "/"), target
            answer = session.get(target, timeout=30, allow_redirects=False)
            continue
        assert answer.status_code == 200, (answer.status_code, answer.text[:1000])
        form = FormParser()
        form.feed(answer.text)
        assert form.action, answer.text[:1000]
        fields = dict(form.fields)
        if fields.get("prompt") == "login":
            fields.update(login=login, password="any password: the provider's dev sign-in")
        answer = session.post(
            urljoin(answer.url, form.action), data=fields, timeout=30, allow_redirects=False
        )
    raise AssertionError(f"no way back to the hub; provider log:\n{setup.provider.log_tail()}")


def home(setup: Setup, session: requests.Session) -> requests.Response:
    return session.get(f"{setup.hub.url}/hub/home", timeout=30, allow_redirects=False)


def hub_user(setup: Setup, name: str) -> dict:
    answer = setup.hub.api("GET", f"/users/{name}")
    answer.raise_for_status()
    return dict(answer.json())


def test_the_provider_is_the_real_one(oidc: Setup):
    """The hub talks to node-oidc-provider: its discovery document names its endpoints."""
    with browser() as session:
        found = session.get(f"{oidc.provider.issuer}/.well-known/openid-configuration", timeout=30)
    document = found.json()
    assert (document["issuer"], document["token_endpoint"], document["userinfo_endpoint"]) == (
        oidc.provider.issuer, oidc.provider.token_url, oidc.provider.userinfo_url,
    )  # fmt: skip
    assert "S256" in document["code_challenge_methods_supported"]


def test_a_user_allowed_by_name_logs_in(oidc: Setup):
    started = time.time()
    session, callback = log_in(oidc, "alice")
    assert callback.status_code == 302, callback.text[:1000]
    assert urlsplit(callback.headers["Location"]).path == "/hub/home"
    assert home(oidc, session).status_code == 200
    assert [e["outcome"] for e in oidc.provider.events("token", since=started)] == ["ok"]
    assert hub_user(oidc, "alice@example.org")["admin"] is False


def test_groups_let_members_in_and_make_admins(oidc: Setup):
    for login in ("bob", "dave"):
        session, callback = log_in(oidc, login)
        assert callback.status_code == 302, (login, callback.text[:1000])
        admin_page = session.get(f"{oidc.hub.url}/hub/admin", timeout=30, allow_redirects=False)
        assert admin_page.status_code == (200 if login == "dave" else 403), login
    bob, dave = hub_user(oidc, "bob@example.org"), hub_user(oidc, "dave@example.org")
    assert (bob["admin"], dave["admin"]) == (False, True)
    assert "staff" in bob["groups"] and "ops" in dave["groups"]


def test_a_user_in_no_allowed_group_is_refused(oidc: Setup):
    session, callback = log_in(oidc, "mallory")
    assert callback.status_code == 403, callback.text[:1000]
    assert "not currently authorized" in callback.text
    assert home(oidc, session).status_code == 302  # not logged in
    assert oidc.hub.api("GET", "/users/mallory@example.org").status_code == 404


def test_an_unverified_address_is_refused(oidc: Setup):
    """trudy (group staff) put dave's address, unverified, in her profile: as the user name it
    would make her dave, an admin."""
    session, callback = log_in(oidc, "trudy")
    assert callback.status_code == 403, callback.text[:1000]
    assert "not verified" in callback.text
    assert home(oidc, session).status_code == 302


def test_a_wrong_client_secret_gets_a_page_that_says_so(oidc: Setup):
    """Failed before berth/auth/oidc.py's get_token_info: the provider's 401 invalid_client
    reached JupyterHub as an exception, a bare "500 : Internal Server Error" page."""
    wrong = "wrong-" + secrets.token_hex(24)
    private(oidc.secret_file, wrong)
    oidc.hub.restart_hub()
    try:
        started = time.time()
        session, callback = log_in(oidc, "alice")
        outcomes = [e["outcome"] for e in oidc.provider.events("token", since=started)]
        assert outcomes == ["invalid_client"]
        assert callback.status_code == 503, callback.text[:1000]
        page = html.unescape(callback.text)
        assert CLIENT_REFUSED.split(",")[0] in page and "auth.oidc's client_id" in page
        assert "Internal Server Error" not in page
        assert wrong not in callback.text and oidc.secret not in callback.text
        assert home(oidc, session).status_code == 302  # not logged in
        assert wrong not in oidc.hub.log_tail(400)
    finally:
        private(oidc.secret_file, oidc.secret)
        oidc.hub.restart_hub()


def test_an_expired_access_token_sends_the_user_back_to_the_login(oidc: Setup):
    session, callback = log_in(oidc, "erin")
    assert callback.status_code == 302, callback.text[:1000]
    assert home(oidc, session).status_code == 200
    time.sleep(SHORT_LIVED + 3)  # past the lifetime, the clock tolerance, the refresh age
    started = time.time()
    expired = home(oidc, session)
    assert expired.status_code == 302, (oidc.provider.log_tail(), oidc.hub.log_tail(30))
    assert urlsplit(expired.headers["Location"]).path == "/hub/login"
    assert [e["outcome"] for e in oidc.provider.events("userinfo", since=started)] == [
        "invalid_token"
    ]
    _, again = log_in(oidc, "erin", session)
    assert again.status_code == 302, again.text[:1000]
    assert home(oidc, session).status_code == 200


def test_an_expired_login_code_gets_a_page_that_says_to_log_in_again(oidc: Setup):
    """walt's first authorization code lives 1 s and his browser comes back after 3 s; his
    next login works. Failed before
    berth/auth/oidc.py's get_token_info: the provider's 400 invalid_grant was a bare 500."""
    started = time.time()
    session, callback = log_in(oidc, "walt", linger=3)
    assert [e["outcome"] for e in oidc.provider.events("token", since=started)] == ["invalid_grant"]
    assert callback.status_code == 400, callback.text[:1000]
    assert "did not accept this login any more" in html.unescape(callback.text)
    assert home(oidc, session).status_code == 302  # not logged in
    _, again = log_in(oidc, "walt", session)
    assert again.status_code == 302, again.text[:1000]
