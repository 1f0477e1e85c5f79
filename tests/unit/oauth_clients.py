"""OAuth client settings for berth.yaml's `auth` section, shared by the translator's tests."""

OIDC = {
    "client_id": "berth",
    "client_secret": "oidc-secret",
    "authorize_url": "https://id.example.org/auth",
    "token_url": "https://id.example.org/token",
    "userdata_url": "https://id.example.org/userinfo",
}
GITHUB = {"client_id": "gh-id", "client_secret": "gh-secret"}
