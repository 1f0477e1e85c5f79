"""Run in the hub container after `berth up` replaced the proxy: ask JupyterHub to add every
route to the new (empty) proxy now, instead of at its next periodic check."""

from __future__ import annotations

import sys

from berth.deploy.accounts import Refused, api


def main() -> int:
    try:
        api("POST", "/proxy")
    except Refused as exc:
        print(f"berth: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
