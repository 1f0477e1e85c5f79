"""A tiny OAuth2 / OpenID Connect provider for tests, standard library only.

It is strict where a real provider is, so that a test using it can fail for real: unknown
clients, unregistered redirect URIs, wrong client secrets, reused / expired / foreign codes,
mismatched ``redirect_uri`` and bad PKCE verifiers are all refused.

Endpoints (OIDC):

- ``GET /authorize`` — a login form (username, "Sign in" / "Deny"); ``POST /authorize`` takes
  the form and redirects to ``redirect_uri`` with ``code`` and ``state`` (or
  ``error=access_denied``).
- ``POST /token`` — code → ``access_token`` (+ an HS256 ``id_token`` when ``openid`` was asked);
  client authentication by form fields or HTTP Basic; errors as RFC 6749 §5.2 (401 for
  ``invalid_client``, 400 otherwise).
- ``GET /userinfo`` — ``Authorization: Bearer …`` → ``sub``, ``preferred_username``, ``name``,
  ``email``, ``groups``.

Endpoints (GitHub Enterprise style, what OAuthenticator's GitHubOAuthenticator calls when its
``github_url`` is this server): ``/login/oauth/authorize``, ``POST /login/oauth/access_token``
(errors as GitHub: status 200 with ``error``), ``/api/v3/user``, ``/api/v3/user/emails``,
``/api/v3/user/teams``, ``/api/v3/orgs/ORG/members/USER`` and
``/api/v3/orgs/ORG/teams/TEAM/members/USER`` (204 member, 404 not).

Test helpers: ``GET /healthz``; ``GET /_log`` — what the provider saw (endpoint, Host header,
how the client authenticated, outcome), never a secret, code or token.

Configuration is a JSON file::

    {"clients": {"CLIENT_ID": {"secret": "…", "redirect_uris": ["https://…/hub/oauth_callback"]}},
     "users": {"alice": {"name": "Alice", "email": "alice@example.org",
                         "groups": ["staff"], "orgs": ["acme", "acme:devs"]}},
     "issuer": "http://127.0.0.1:8000"}

Run: ``python3 oauth_provider.py --config provider.json [--host 0.0.0.0] [--port 8000]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

CODE_LIFETIME = 120  # seconds
TOKEN_LIFETIME = 3600


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status, self.error, self.description = status, error, description


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def add_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


class Provider:
    """The provider's state: clients, users, issued codes and tokens (thread-safe)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.clients: dict[str, dict[str, Any]] = config.get("clients", {})
        self.users: dict[str, dict[str, Any]] = config.get("users", {})
        self.issuer: str = config.get("issuer", "http://oauth-provider.test")
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def record(self, **event: Any) -> None:
        with self.lock:
            self.events.append({"time": time.time(), **event})

    # -- authorization ----------------------------------------------------------------------

    def check_authorize(self, params: dict[str, str]) -> dict[str, Any]:
        """The client of an authorization request, or OAuthError (never redirected)."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            raise OAuthError(400, "invalid_client", "unknown client_id")
        if params.get("redirect_uri", "") not in client.get("redirect_uris", []):
            raise OAuthError(400, "invalid_request", "redirect_uri is not registered")
        if params.get("response_type", "code") != "code":
            raise OAuthError(400, "unsupported_response_type", "only response_type=code")
        method = params.get("code_challenge_method", "plain")
        if params.get("code_challenge") and method not in ("S256", "plain"):
            raise OAuthError(400, "invalid_request", "unsupported code_challenge_method")
        return client

    def issue_code(self, params: dict[str, str], username: str) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "client_id": params["client_id"],
                "redirect_uri": params["redirect_uri"],
                "username": username,
                "scope": params.get("scope", ""),
                "nonce": params.get("nonce"),
                "challenge": params.get("code_challenge"),
                "method": params.get("code_challenge_method", "plain"),
                "expires": time.time() + CODE_LIFETIME,
                "used": False,
                "tokens": [],
            }
        return code

    # -- token --------------------------------------------------------------------------------

    def authenticate_client(self, form: dict[str, str], authorization: str) -> tuple[str, str]:
        """(client_id, how) for a token request; OAuthError(401) if the client is not genuine."""
        how = "post"
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if authorization.lower().startswith("basic "):
            how = "basic"
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
                basic_id, basic_secret = decoded.split(":", 1)
            except (ValueError, UnicodeDecodeError) as exc:
                raise OAuthError(401, "invalid_client", "malformed Basic credentials") from exc
            client_id, secret = unquote(basic_id), unquote(basic_secret)
        client = self.clients.get(client_id)
        if client is None or secret is None:
            raise OAuthError(401, "invalid_client", "client authentication failed")
        if not hmac.compare_digest(secret.encode(), str(client["secret"]).encode()):
            raise OAuthError(401, "invalid_client", "client authentication failed")
        return client_id, how

    def exchange_code(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "authorization_code":
            raise OAuthError(400, "unsupported_grant_type", "only authorization_code")
        with self.lock:
            grant = self.codes.get(form.get("code", ""))
            if grant is None:
                raise OAuthError(400, "invalid_grant", "unknown code")
            if grant["used"]:
                # RFC 6749 §4.1.2: a replayed code revokes what it was exchanged for.
                for token in grant["tokens"]:
                    self.tokens.pop(token, None)
                raise OAuthError(400, "invalid_grant", "code already used")
            grant["used"] = True
        if grant["expires"] < time.time():
            raise OAuthError(400, "invalid_grant", "code expired")
        if grant["client_id"] != client_id:
            raise OAuthError(400, "invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            raise OAuthError(400, "invalid_grant", "redirect_uri does not match")
        if grant["challenge"]:
            verifier = form.get("code_verifier", "")
            if grant["method"] == "S256":
                verifier = b64url(hashlib.sha256(verifier.encode()).digest())
            if not verifier or not hmac.compare_digest(verifier, grant["challenge"]):
                raise OAuthError(400, "invalid_grant", "PKCE code_verifier does not match")
        access_token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access_token] = {
                "username": grant["username"],
                "client_id": client_id,
                "scope": grant["scope"],
                "expires": time.time() + TOKEN_LIFETIME,
            }
            grant["tokens"].append(access_token)
        answer: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": grant["scope"],
        }
        if "openid" in grant["scope"].split():
            answer["id_token"] = self.id_token(client_id, grant)
        return answer

    def id_token(self, client_id: str, grant: dict[str, Any]) -> str:
        """An HS256 JWT signed with the client secret (OIDC Core §10.1)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            **self.claims(grant["username"]),
        }
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(claims).encode())
        key = str(self.clients[client_id]["secret"]).encode()
        signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(signature)}"

    # -- resources ----------------------------------------------------------------------------

    def token_user(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        with self.lock:
            grant = self.tokens.get(token.strip())
        if grant is None or grant["expires"] < time.time():
            return None
        return grant["username"]

    def claims(self, username: str) -> dict[str, Any]:
        user = self.users[username]
        return {
            "sub": hashlib.sha256(username.encode()).hexdigest()[:16],
            "preferred_username": username,
            "name": user.get("name", username),
            "email": user.get("email", f"{username}@example.org"),
            "email_verified": user.get("email_verified", True),
            "groups": list(user.get("groups", [])),
        }

    def github_user(self, username: str) -> dict[str, Any]:
        user = self.users[username]
        return {
            "login": username,
            "id": int(hashlib.sha256(username.encode()).hexdigest()[:8], 16),
            "name": user.get("name", username),
            "email": user.get("email"),
        }


class Handler(BaseHTTPRequestHandler):
    server_version = "berth-test-oauth/1"
    provider: Provider  # set on the subclass made by make_server

    # -- plumbing -------------------------------------------------------------------------------

    def send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, data: Any, **headers: str) -> None:
        self.send(status, json.dumps(data).encode(), "application/json", **headers)

    def send_html(self, status: int, text: str) -> None:
        self.send(status, text.encode(), "text/html; charset=utf-8")

    def redirect(self, url: str) -> None:
        self.send(302, b"", "text/plain", Location=url)

    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))

    def form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        return dict(parse_qsl(body, keep_blank_values=True))

    def record(self, endpoint: str, outcome: str, **extra: Any) -> None:
        self.provider.record(
            endpoint=endpoint, host=self.headers.get("Host", ""), outcome=outcome, **extra
        )

    # -- routing --------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/authorize", "/login/oauth/authorize"):
            self.authorize_page(path, self.query())
        elif path == "/userinfo":
            self.userinfo()
        elif path.startswith("/api/v3/"):
            self.github_api(path[len("/api/v3") :])
        elif path == "/healthz":
            self.send_json(200, {"ok": True})
        elif path == "/_log":
            with self.provider.lock:
                self.send_json(200, list(self.provider.events))
        else:
            self.send_json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/authorize", "/login/oauth/authorize"):
            self.authorize_submit(path, self.form())
        elif path == "/token":
            self.token(github=False)
        elif path == "/login/oauth/access_token":
            self.token(github=True)
        else:
            self.send_json(404, {"error": "not_found"})

    # -- endpoints ------------------------------------------------------------------------------

    def authorize_page(self, action: str, params: dict[str, str], error: str = "") -> None:
        try:
            self.provider.check_authorize(params)
        except OAuthError as exc:
            self.record("authorize", exc.error)
            self.send_html(exc.status, f"<h1>{exc.error}</h1><p>{html.escape(exc.description)}")
            return
        self.record("authorize", "form" if not error else "unknown_user")
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k not in ("username", "action")
        )
        message = f'<p class="error">{html.escape(error)}</p>' if error else ""
        self.send_html(
            401 if error else 200,
            "<!doctype html><title>Test provider: sign in</title>"
            f"<h1>Sign in to {html.escape(params['client_id'])}</h1>{message}"
            f'<form method="post" action="{html.escape(action)}">{hidden}'
            '<label>Username <input name="username" autofocus></label>'
            '<button type="submit" name="action" value="login">Sign in</button>'
            '<button type="submit" name="action" value="deny">Deny</button>'
            "</form>",
        )

    def authorize_submit(self, action: str, form: dict[str, str]) -> None:
        try:
            self.provider.check_authorize(form)
        except OAuthError as exc:
            self.record("authorize", exc.error)
            self.send_html(exc.status, f"<h1>{exc.error}</h1><p>{html.escape(exc.description)}")
            return
        back = {"state": form["state"]} if "state" in form else {}
        if form.get("action") == "deny":
            self.record("authorize", "access_denied")
            self.redirect(add_query(form["redirect_uri"], {"error": "access_denied", **back}))
            return
        username = form.get("username", "")
        if username not in self.provider.users:
            self.authorize_page(action, form, error=f"unknown user {username!r}")
            return
        code = self.provider.issue_code(form, username)
        self.record("authorize", "code", username=username)
        self.redirect(add_query(form["redirect_uri"], {"code": code, **back}))

    def token(self, github: bool) -> None:
        form = self.form()
        authorization = self.headers.get("Authorization", "")
        endpoint = "github_token" if github else "token"
        try:
            client_id, how = self.provider.authenticate_client(form, authorization)
            if github:
                form.setdefault("grant_type", "authorization_code")
            answer = self.provider.exchange_code(client_id, form)
        except OAuthError as exc:
            self.record(endpoint, exc.error)
            body = {"error": exc.error, "error_description": exc.description}
            if github:
                # GitHub answers 200 with an error object (incorrect_client_credentials, ...).
                github_names = {
                    "invalid_client": "incorrect_client_credentials",
                    "invalid_grant": "bad_verification_code",
                }
                body["error"] = github_names.get(exc.error, exc.error)
                self.send_json(200, body)
            elif exc.status == 401:
                self.send_json(401, body, WWW_Authenticate='Basic realm="token"')
            else:
                self.send_json(exc.status, body)
            return
        self.record(endpoint, "ok", client_auth=how, pkce="code_verifier" in form)
        if github:
            answer = {
                "access_token": answer["access_token"],
                "token_type": "bearer",
                "scope": ",".join(answer["scope"].split()),
            }
        self.send_json(200, answer)

    def userinfo(self) -> None:
        username = self.provider.token_user(self.headers.get("Authorization", ""))
        if username is None:
            self.record("userinfo", "invalid_token")
            self.send_json(
                401, {"error": "invalid_token"}, WWW_Authenticate='Bearer error="invalid_token"'
            )
            return
        self.record("userinfo", "ok", username=username)
        self.send_json(200, self.provider.claims(username))

    def github_api(self, path: str) -> None:
        username = self.provider.token_user(self.headers.get("Authorization", ""))
        if username is None:
            self.record("github_api", "bad_credentials")
            self.send_json(401, {"message": "Bad credentials"})
            return
        self.record("github_api", "ok", path=path, username=username)
        user = self.provider.users[username]
        parts = path.strip("/").split("/")
        if parts == ["user"]:
            self.send_json(200, self.provider.github_user(username))
        elif parts == ["user", "emails"]:
            email = user.get("email", f"{username}@example.org")
            self.send_json(200, [{"email": email, "primary": True, "verified": True}])
        elif parts == ["user", "teams"]:
            teams = [o.split(":", 1) for o in user.get("orgs", []) if ":" in o]
            self.send_json(200, [{"slug": t, "organization": {"login": o}} for o, t in teams])
        elif len(parts) == 4 and parts[0] == "orgs" and parts[2] == "members":
            member = parts[1] in user.get("orgs", []) and parts[3] == username
            self.send(204 if member else 404, b"", "application/json")
        elif len(parts) == 6 and parts[0] == "orgs" and parts[2] == "teams":
            member = f"{parts[1]}:{parts[3]}" in user.get("orgs", []) and parts[5] == username
            self.send(204 if member else 404, b"", "application/json")
        else:
            self.send_json(404, {"message": "Not Found"})

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only: never a header or a body (they carry secrets).
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(config: dict[str, Any], host: str = "127.0.0.1", port: int = 0):
    """A ThreadingHTTPServer for `config` (port 0: any free port); call serve_forever()."""
    handler = type("BoundHandler", (Handler,), {"provider": Provider(config)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file: clients, users, issuer")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    server = make_server(config, args.host, args.port)
    print(f"test OAuth provider on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
