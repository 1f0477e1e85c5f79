"""Berth's JupyterHub authenticators: thin subclasses that close holes in the upstream ones.

- ``native``: NativeAuthenticator that keeps the names of berth.yaml for the operator (sign-up
  cannot claim them) and never hands admin rights to an account someone made by signing up.
- ``oidc``: GenericOAuthenticator that, when user names are e-mail addresses, accepts only
  addresses the provider says it has verified.
- ``github``: GitHubOAuthenticator as it is.

None of them lets anyone log in (or sign up) under the name of one of Berth's own parts
(``hub``, ``proxy``, …: reserved.py).

They run inside the hub (registered as the ``jupyterhub.authenticators`` entry points
``berth-native``, ``berth-oidc`` and ``berth-github``); `berth up` selects them through the
rendered config.
"""
