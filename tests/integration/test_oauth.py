"""OAuth logins through a real `berth up` hub, against a local provider (tests/oauth_provider/).

The provider runs as the container `berth-test-oauth` (image berth/hub, which has Python) on
the deployment's own network, with its port published on 127.0.0.1 only:

    requests (the "browser") ── http://127.0.0.1:<published>/authorize ──▶ berth-test-oauth
    berth-hub ── http://berth-test-oauth:8000/token, /userinfo (Docker network) ──▶ berth-test-oauth

so the browser side and the hub's server-to-server exchange use different addresses, as with a
real identity provider. Nothing here talks to any other address: GitHub is the local provider
too, through `auth.github.github_url` (GitHub Enterprise's setting).

One deployment per auth type (class-scoped fixtures: the deployment lock is exclusive, so one
must be torn down before the next starts). Tests in a class share the hub, not an order: each
can run alone, and looks only at the provider's events since its own login.
"""

from __future__ import annotations

import hashlib
import html
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import docker
import oauth_provider
import pytest
import requests
from deployment import free_port
from oauth_setup import (
    CLIENT_ID,
    PROVIDER_IMAGE,
    PROVIDER_NAME,
    PROVIDER_PORT,
    Provider,
    Setup,
    assert_secret_hidden,
    hub_log,
    in_process_provider,
    logged_in,
    oauth_deployment,
    oauth_login,
    provider_config,
    provider_container,
    quiet_session,
    write_env_file,
)

pytestmark = pytest.mark.integration

# Hub user names under OIDC: the provider's verified e-mail address (the default claim).
ALICE, BOB, DAVE = "alice@example.org", "bob@example.org", "dave@example.org"


@pytest.fixture(scope="session")
def hub_image(docker_client: docker.DockerClient) -> str:
    try:
        docker_client.images.get(PROVIDER_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{PROVIDER_IMAGE} is not built")
    return PROVIDER_IMAGE


@pytest.fixture(scope="class")
def oidc(tmp_path_factory, docker_client, hub_image) -> Iterator[Setup]:
    """`auth: {type: oidc}` with the client ID, secret and callback in a mode-600 env_file."""
    workdir = tmp_path_factory.mktemp("oauth-oidc")
    published = free_port()
    public = f"http://127.0.0.1:{published}"
    internal = Provider(public).internal_url
    secret = "oidc-secret-" + secrets.token_hex(16)
    env_file = workdir / "oidc.env"

    def extra(port: int) -> dict[str, Any]:
        write_env_file(
            env_file,
            {
                "OAUTH_CLIENT_ID": CLIENT_ID,
                "OAUTH_CLIENT_SECRET": secret,
                "OAUTH_CALLBACK_URL": f"https://127.0.0.1:{port}/hub/oauth_callback",
            },
        )
        return {
            "auth": {
                "type": "oidc",
                "oidc": {
                    "env_file": env_file.name,  # relative to berth.yaml
                    "authorize_url": f"{public}/authorize",
                    "token_url": f"{internal}/token",
                    "userdata_url": f"{internal}/userinfo",
                    "allow_http": True,
                    "login_service": "Berth Test IdP",
                    "allowed_groups": ["staff"],
                    "admin_groups": ["ops"],
                },
            },
            # The default username_claim: the provider's verified e-mail address.
            "users": {"allowed": ["alice@example.org"]},
        }

    with oauth_deployment(workdir, extra) as (dep, first_up):
        callback = f"{dep.url}/hub/oauth_callback"
        config = provider_config(secret, callback, public)
        with provider_container(docker_client, dep.config["network"], published, config) as prov:
            yield Setup(dep, prov, secret, first_up, env_file, callback)


@pytest.fixture(scope="class")
def github(tmp_path_factory, docker_client, hub_image) -> Iterator[Setup]:
    """`auth: {type: github}` with the client ID and secret inline in berth.yaml."""
    workdir = tmp_path_factory.mktemp("oauth-github")
    published = free_port()
    public = f"http://127.0.0.1:{published}"
    secret = "github-secret-" + secrets.token_hex(16)
    section: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": secret}
    # One base URL for the hub and the browser: the hub's name for the provider (oauth_login
    # maps it to the published port on the browser's side). GitHub Enterprise's setting.
    section["github_url"] = Provider(public).internal_url
    section["allow_http"] = True

    def extra(port: int) -> dict[str, Any]:
        return {"auth": {"type": "github", "github": section}, "users": {"allowed": ["alice"]}}

    with oauth_deployment(workdir, extra) as (dep, first_up):
        callback = f"{dep.url}/hub/oauth_callback"
        config = provider_config(secret, callback, public)
        with provider_container(docker_client, dep.config["network"], published, config) as prov:
            yield Setup(dep, prov, secret, first_up, None, callback)


# -- driving a login ------------------------------------------------------------------------------


def test_the_provider_refuses_what_a_real_one_refuses():
    """The fake is strict (so the hub tests can fail): client, redirect_uri, code, PKCE, token."""
    callback = "https://hub.test/hub/oauth_callback"
    config = provider_config("right-secret", callback, "http://issuer.test")
    verifier = secrets.token_urlsafe(48)
    challenge = oauth_provider.b64url(hashlib.sha256(verifier.encode()).digest())
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": callback,
        "response_type": "code",
        "scope": "openid profile",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with in_process_provider(config) as url, quiet_session() as http:

        def code_for(username: str = "alice", path: str = "/authorize") -> str:
            answer = http.post(
                url + path,
                data={**params, "username": username, "action": "login"},
                timeout=10,
                allow_redirects=False,
            )
            assert answer.status_code == 302, answer.text
            query = parse_qs(urlsplit(answer.headers["Location"]).query)
            assert query["state"] == ["s1"]
            return query["code"][0]

        def token(code: str, /, **changes: str) -> requests.Response:
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": callback,
                "client_id": CLIENT_ID,
                "client_secret": "right-secret",
                "code_verifier": verifier,
                **changes,
            }
            return http.post(url + "/token", data=form, timeout=10)

        # Authorization: never a redirect to an unregistered URI or for an unknown client.
        assert http.get(url + "/authorize", params=params, timeout=10).status_code == 200
        for bad in ({"client_id": "nobody"}, {"redirect_uri": "https://evil.test/cb"}):
            answer = http.get(
                url + "/authorize", params={**params, **bad}, timeout=10, allow_redirects=False
            )
            assert answer.status_code == 400 and "Location" not in answer.headers
        unknown = http.post(
            url + "/authorize", data={**params, "username": "eve", "action": "login"}, timeout=10
        )
        assert unknown.status_code == 401 and "unknown user" in unknown.text
        denied = http.post(
            url + "/authorize", data={**params, "action": "deny"}, timeout=10, allow_redirects=False
        )
        assert "error=access_denied" in denied.headers["Location"]

        # Token: client authentication first (401), then the grant (400 invalid_grant).
        answer = token(code_for(), client_secret="wrong")
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
        for changes in (
            {"redirect_uri": "https://hub.test/other"},
            {"code_verifier": "not-the-verifier"},
            {"code": "made-up"},
        ):
            answer = token(code_for(), **changes)
            assert answer.status_code == 400, changes
            assert answer.json()["error"] == "invalid_grant", changes
        code = code_for()
        good = token(code)
        assert good.status_code == 200, good.text
        issued = good.json()
        assert issued["token_type"] == "Bearer" and issued["id_token"].count(".") == 2
        bearer = {"Authorization": f"Bearer {issued['access_token']}"}
        info = http.get(url + "/userinfo", headers=bearer, timeout=10)
        assert info.json()["preferred_username"] == "alice"
        assert info.json()["groups"] == ["research"]
        # A replayed code is refused and revokes the token it gave.
        assert token(code).json()["error"] == "invalid_grant"
        assert http.get(url + "/userinfo", headers=bearer, timeout=10).status_code == 401

        # GitHub style: errors come back as 200 with `error`; the API under /api/v3.
        github_form = {"client_id": CLIENT_ID, "code_verifier": verifier, "redirect_uri": callback}
        answer = http.post(
            url + "/login/oauth/access_token",
            data={**github_form, "client_secret": "wrong", "code": code_for()},
            headers={"Accept": "application/json"},
            timeout=10,
        )
        assert answer.json()["error"] == "incorrect_client_credentials"
        answer = http.post(
            url + "/login/oauth/access_token",
            data={**github_form, "client_secret": "right-secret", "code": code_for()},
            headers={"Accept": "application/json"},
            timeout=10,
        )
        gh = {"Authorization": f"token {answer.json()['access_token']}"}
        assert http.get(url + "/api/v3/user", headers=gh, timeout=10).json()["login"] == "alice"
        member = http.get(url + "/api/v3/orgs/acme/members/alice", headers=gh, timeout=10)
        assert member.status_code == 204
        other = http.get(url + "/api/v3/orgs/other/members/alice", headers=gh, timeout=10)
        assert other.status_code == 404


# -- OpenID Connect -------------------------------------------------------------------------------


class TestOIDC:
    def test_login_page_sends_the_browser_to_the_provider(self, oidc: Setup):
        dep = oidc.dep
        with dep.session() as session:
            page = session.get(f"{dep.url}/hub/login", timeout=30)
        assert page.status_code == 200
        assert "Sign in with Berth Test IdP" in page.text
        login = oauth_login(oidc, "alice")
        target = urlsplit(login.authorize_url)
        assert f"{target.scheme}://{target.netloc}" == oidc.provider.public_url
        assert target.path == "/authorize"
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == oidc.callback  # OAUTH_CALLBACK_URL from the env_file
        assert query["response_type"] == "code"
        assert query["scope"].split() == ["openid", "profile", "email"]
        assert query["code_challenge_method"] == "S256" and query["state"]
        assert oidc.secret not in login.authorize_url
        assert login.callback.status_code == 302, login.callback.text[:1000]
        oidc.logged_in["alice"] = login.session

    def test_an_allowed_user_logs_in(self, oidc: Setup):
        login = oauth_login(oidc, "alice")
        assert login.callback.status_code == 302, login.callback.text[:1000]
        oidc.logged_in["alice"] = login.session
        home = login.session.get(f"{oidc.dep.url}/hub/home", timeout=30, allow_redirects=False)
        assert home.status_code == 200
        assert "alice" in home.text
        # The hub exchanged the code itself, over the Docker network, with its secret and PKCE.
        tokens = oidc.provider.events("token", since=login.started)
        assert [t["outcome"] for t in tokens] == ["ok"], tokens
        assert tokens[0]["host"] == f"{PROVIDER_NAME}:{PROVIDER_PORT}"
        assert tokens[0]["client_auth"] == "post" and tokens[0]["pkce"] is True
        userinfo = oidc.provider.events("userinfo", since=login.started)
        assert [u["username"] for u in userinfo] == ["alice"], userinfo
        assert userinfo[0]["host"] == f"{PROVIDER_NAME}:{PROVIDER_PORT}"

    def test_group_rules_let_members_in_and_make_admins(self, oidc: Setup):
        for name in ("bob", "dave"):
            session = logged_in(oidc, name)
            home = session.get(f"{oidc.dep.url}/hub/home", timeout=30, allow_redirects=False)
            assert home.status_code == 200, name
        admin_page = logged_in(oidc, "dave").get(
            f"{oidc.dep.url}/hub/admin", timeout=30, allow_redirects=False
        )
        assert admin_page.status_code == 200
        not_admin = logged_in(oidc, "bob").get(
            f"{oidc.dep.url}/hub/admin", timeout=30, allow_redirects=False
        )
        assert not_admin.status_code == 403
        users = {u["name"]: u for u in oidc.dep.api("GET", "/hub/api/users", user=DAVE).json()}
        assert users[DAVE]["admin"] is True
        assert users[BOB]["admin"] is False and users[ALICE]["admin"] is False
        # manage_groups: the provider's groups claim became JupyterHub groups.
        assert "staff" in users[BOB]["groups"]
        assert "ops" in users[DAVE]["groups"]

    def test_an_unverified_address_is_refused(self, oidc: Setup):
        """trudy may log in (group staff) but put dave's address, unverified, in her profile;
        with the address as the user name she would be dave, an admin. Fails on main (there
        the name came from preferred_username, which some providers let users edit too)."""
        login = oauth_login(oidc, "trudy")
        assert login.callback.status_code == 403, login.callback.text[:1000]
        assert "not verified" in login.callback.text
        home = login.session.get(f"{oidc.dep.url}/hub/home", timeout=30, allow_redirects=False)
        assert home.status_code == 302  # not logged in, as dave or anyone

    def test_a_user_not_allowed_is_refused(self, oidc: Setup):
        login = oauth_login(oidc, "mallory")
        assert login.callback.status_code == 403, login.callback.text[:1000]
        assert "not currently authorized" in login.callback.text
        home = login.session.get(f"{oidc.dep.url}/hub/home", timeout=30, allow_redirects=False)
        assert home.status_code == 302
        assert urlsplit(home.headers["Location"]).path == "/hub/login"
        # The provider did vouch for mallory: the hub is the one that said no.
        assert oidc.provider.events("userinfo", since=login.started)[-1]["username"] == "mallory"
        logged_in(oidc, "dave")  # an admin (by group) to ask the REST API with
        answer = oidc.dep.api("GET", "/hub/api/users/mallory@example.org", user=DAVE)
        assert answer.status_code == 404

    def test_a_denied_consent_is_an_error_not_a_login(self, oidc: Setup):
        login = oauth_login(oidc, "alice", button="deny")
        assert login.callback.status_code == 400, login.callback.text[:1000]
        assert "access_denied" in login.callback.text
        assert not oidc.provider.events("token", since=login.started)

    def test_the_client_secret_never_shows(self, oidc: Setup, docker_client):
        assert oidc.secret not in (oidc.dep.workdir / "berth.yaml").read_text()
        assert_secret_hidden(oidc, docker_client, "GenericOAuthenticator")

    def test_a_wrong_client_secret_fails_the_login(self, oidc: Setup, docker_client):
        """The provider answers 401 invalid_client; the hub shows a page that says the client
        credentials were refused (503, berth/auth/oidc.py; JupyterHub's bare 500 before it):
        no redirect loop, no login, nothing leaked."""
        assert oidc.env_file is not None
        original = oidc.env_file.read_text()
        wrong = "wrong-secret-" + secrets.token_hex(16)
        oidc.env_file.write_text(original.replace(oidc.secret, wrong))  # stays mode 600
        try:
            changed = oidc.dep.up()
            output = changed.stdout + changed.stderr
            assert "restarting berth-hub" in output
            assert wrong not in output and oidc.secret not in output
            login = oauth_login(oidc, "alice")
            tokens = oidc.provider.events("token", since=login.started)
            assert [e["outcome"] for e in tokens] == ["invalid_client"]
            assert not oidc.provider.events("userinfo", since=login.started)
            assert login.callback.status_code == 503, login.callback.text[:1000]
            page = html.unescape(login.callback.text)
            assert "refused this hub's client credentials" in page, page[-3000:]
            assert "Internal Server Error" not in page
            assert "Location" not in login.callback.headers
            assert wrong not in login.callback.text
            home = login.session.get(f"{oidc.dep.url}/hub/home", timeout=30, allow_redirects=False)
            assert home.status_code == 302  # not logged in
            log = hub_log(oidc.dep)
            assert "The token endpoint refused the hub: 401 invalid_client" in log, log[-3000:]
            assert wrong not in log
        finally:
            oidc.env_file.write_text(original)
            oidc.dep.up()


# -- GitHub ---------------------------------------------------------------------------------------


class TestGitHub:
    def test_login_sends_the_browser_to_github_with_the_client(self, github: Setup):
        dep = github.dep
        with dep.session() as session:
            page = session.get(f"{dep.url}/hub/login", timeout=30)
            assert "Sign in with GitHub" in page.text
            start = session.get(
                f"{dep.url}/hub/oauth_login", timeout=30, allow_redirects=False
            )  # not followed here; the login test follows it to the local provider
        assert start.status_code == 302
        target = urlsplit(start.headers["Location"])
        base = github.provider.internal_url  # auth.github.github_url
        assert f"{target.scheme}://{target.netloc}{target.path}" == (
            f"{base}/login/oauth/authorize"
        )
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert query["client_id"] == CLIENT_ID
        # No callback_url given: derived from the address the browser used.
        assert query["redirect_uri"] == github.callback
        assert github.secret not in start.headers["Location"]

    def test_the_client_secret_never_shows(self, github: Setup, docker_client):
        # Written inline in berth.yaml here; still never in output, config, environment, log.
        assert_secret_hidden(github, docker_client, "GitHubOAuthenticator")

    def test_github_login_against_the_provider(self, github: Setup):
        login = oauth_login(github, "alice")
        assert login.callback.status_code == 302, login.callback.text[:1000]
        assert github.provider.events("github_token", since=login.started)[0]["outcome"] == "ok"
        assert oauth_login(github, "mallory").callback.status_code == 403
