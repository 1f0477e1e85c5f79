"""The test provider's HTTP side: routing, the login form, and OIDC / GitHub-style answers."""

from __future__ import annotations

import html
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .store import OAuthError, Provider


def add_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


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

    def authorize_refused(self, params: dict[str, str]) -> bool:
        """Whether the request is refused; if so its error page is sent, never a redirect (the
        client or its redirect_uri is what cannot be trusted)."""
        try:
            self.provider.check_authorize(params)
        except OAuthError as exc:
            self.record("authorize", exc.error)
            self.send_html(exc.status, f"<h1>{exc.error}</h1><p>{html.escape(exc.description)}")
            return True
        return False

    def authorize_page(self, action: str, params: dict[str, str], error: str = "") -> None:
        if self.authorize_refused(params):
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
        if self.authorize_refused(form):
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
