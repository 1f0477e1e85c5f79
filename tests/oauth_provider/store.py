"""The test provider's state: registered clients and users, the codes and tokens it issued.

Every check a real provider makes on a grant lives here, apart from HTTP, so the handlers in
server.py only translate requests and answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import unquote

CODE_LIFETIME = 120  # seconds
TOKEN_LIFETIME = 3600


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status, self.error, self.description = status, error, description


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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
