"""The proxy container's entry: wait for the token and certificate that the hub writes into the
proxy volume, then exec configurable-http-proxy.

The token reaches the proxy in its process environment only (CONFIGPROXY_AUTH_TOKEN, as
JupyterHub itself hands it over), never on a command line or in the container's configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from berth.deploy import layout

PRELOAD = Path(__file__).with_name("proxy_tls.js")
WAIT_SECONDS = 120.0  # the hub writes the files within a second of starting; allow a slow engine


def wait_for(paths: list[Path], timeout: float) -> list[Path]:
    """Wait (bounded) until every path exists; return those still missing."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [path for path in paths if not path.exists()]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.05)  # on the path of every start of the proxy beside the hub


def command(api_ip: str, hub_url: str, proxy: Path) -> list[str]:
    return [
        "configurable-http-proxy",
        "--ip", "0.0.0.0",
        "--port", str(layout.PROXY_PORT),
        "--api-ip", api_ip,
        "--api-port", str(layout.PROXY_API_PORT),
        "--error-target", hub_url.rstrip("/") + "/hub/error",
        "--ssl-key", str(proxy / "tls" / "key.pem"),
        "--ssl-cert", str(proxy / "tls" / "cert.pem"),
        "--log-level", "info",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="berth-proxy")
    parser.add_argument("--api-ip", required=True, help="where the REST API answers")
    parser.add_argument("--hub-url", required=True, help="the hub, for error pages")
    args = parser.parse_args(argv)
    proxy = layout.proxy_dir()
    token = proxy / Path(layout.PROXY_TOKEN_FILE).name
    missing = wait_for([token, proxy / "tls" / "cert.pem", proxy / "tls" / "key.pem"], WAIT_SECONDS)
    if missing:
        names = ", ".join(str(path) for path in missing)
        print(f"berth-proxy: the hub has not written {names}; is it starting?", file=sys.stderr)
        return 1
    env = {
        **os.environ,
        "CONFIGPROXY_AUTH_TOKEN": token.read_text(encoding="utf-8").strip(),
        # Certificate reload and hardening headers (proxy_tls.js), inside the proxy's process.
        "NODE_OPTIONS": f"--require {PRELOAD}",
        "BERTH_TLS_CERT": str(proxy / "tls" / "cert.pem"),
        "BERTH_TLS_KEY": str(proxy / "tls" / "key.pem"),
        # TLS-ALPN-01 answers that berth-acme writes (proxy_alpn.js); empty without tls.acme.
        "BERTH_TLS_ALPN_DIR": str(proxy / "tls" / layout.ACME_ALPN_DIR),
    }
    os.execvpe("configurable-http-proxy", command(args.api_ip, args.hub_url, proxy), env)


if __name__ == "__main__":
    sys.exit(main())
