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

Run: ``python3 -m oauth_provider --config provider.json [--host 0.0.0.0] [--port 8000]`` from
the folder that holds this package (the tests copy it into a container for that).
"""

from .server import Handler, make_server
from .store import OAuthError, Provider, b64url

__all__ = ["Handler", "OAuthError", "Provider", "b64url", "make_server"]
