"""GitHub logins, without the names of Berth's own parts (berth/auth/reserved.py)."""

from __future__ import annotations

from oauthenticator.github import GitHubOAuthenticator

from berth.auth.reserved import RefuseReservedNames


class BerthGitHubAuthenticator(RefuseReservedNames, GitHubOAuthenticator):
    pass
