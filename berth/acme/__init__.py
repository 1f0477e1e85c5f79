"""Trusted certificates from an ACME authority (Let's Encrypt) for `berth up`.

Runs in a container of its own (`berth-acme`): no engine, no guard, not on the Berth network;
it reaches the authority, answers HTTP-01 challenges on the HTTP port (redirecting everything
else to HTTPS) and writes the certificate into the proxy volume, from which the proxy reloads
it without restarting (berth/deploy/proxy_tls.js).
"""
