"""The hub image's healthcheck: healthy when the proxy answers /hub/health over HTTPS."""

from __future__ import annotations

import ssl
import sys
import urllib.request

from berth.deploy.layout import HUB_PORT


def main() -> int:
    # Only the hub's own loopback is asked; the certificate may be for other names.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{HUB_PORT}/hub/health"
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
