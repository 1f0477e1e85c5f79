"""A real, certified OpenID provider on loopback for the OIDC login tests: panva's
node-oidc-provider (npm ``oidc-provider``, the version pinned in tests/oidc_idp/package-lock.json),
run by Node on this host from tests/oidc_idp/provider.mjs.

``npm ci`` installs it once into tests/oidc_idp/node_modules (behind a TLS-inspecting proxy
set ``BERTH_CA_BUNDLE``, which npm then trusts). The provider listens on 127.0.0.1 only; its
events (grants, refusals, userinfo answers; never a secret or token) are read from its stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IDP_DIR = Path(__file__).resolve().parent / "oidc_idp"


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def install() -> None:
    """`npm ci` unless the locked oidc-provider is installed already."""
    lock = json.loads((IDP_DIR / "package-lock.json").read_text())
    wanted = lock["packages"]["node_modules/oidc-provider"]["version"]
    installed = IDP_DIR / "node_modules" / "oidc-provider" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == wanted:
        return
    env = dict(os.environ)
    if os.environ.get("BERTH_CA_BUNDLE"):
        env["NODE_EXTRA_CA_CERTS"] = os.environ["BERTH_CA_BUNDLE"]
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=IDP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci failed in {IDP_DIR}:\n{done.stdout}{done.stderr}")


@dataclass
class RealProvider:
    issuer: str
    log: Path

    @property
    def authorize_url(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.issuer}/me"

    def events(self, kind: str | None = None, since: float = 0) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event["time"] >= since and (kind is None or event["event"] == kind):
                    found.append(event)
        return found

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def real_provider(workdir: Path, port: int, config: dict[str, Any]) -> Iterator[RealProvider]:
    """The provider on 127.0.0.1:`port` with `config` (see provider.mjs); always stopped."""
    install()
    workdir.mkdir(parents=True, exist_ok=True)
    issuer = f"http://127.0.0.1:{port}"
    config_file = workdir / "idp.json"
    config_file.write_text(json.dumps({"issuer": issuer, "port": port, **config}))
    config_file.chmod(0o600)  # it holds the client secret
    provider = RealProvider(issuer, workdir / "idp.log")
    with open(provider.log, "wb") as log:
        process = subprocess.Popen(
            ["node", str(IDP_DIR / "provider.mjs"), str(config_file)],
            cwd=IDP_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not provider.events("listening"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID provider did not start:\n{provider.log_tail()}")
            time.sleep(0.1)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
