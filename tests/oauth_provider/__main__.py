"""``python3 -m oauth_provider``: serve the test provider until interrupted."""

from __future__ import annotations

import argparse
import json

from .server import make_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A tiny OAuth2 / OIDC provider for tests")
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
