"""The hub container's entry: make missing secrets and the self-signed certificate, then exec
JupyterHub. Runs inside the container, so secrets are born in the data volume and never pass
through the host, a log or the container's environment.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from berth import tls
from berth.deploy import layout

PROXY_PID_FILE = "jupyterhub-proxy.pid"  # ConfigurableHTTPProxy.pid_file, relative to the cwd


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (created with mode 600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def ensure_secrets(data: Path) -> list[str]:
    """Create each generated secret that is missing; return the names created."""
    created = []
    for name in layout.GENERATED_SECRETS:
        path = data / "secrets" / name
        if not path.exists():
            write_private(path, secrets.token_hex(32).encode())
            created.append(name)
    return created


def ensure_self_signed(data: Path, names: list[str]) -> bool:
    """(Re)make the self-signed certificate unless the one there was made for these names.

    The marker file records the names; an operator's certificate has none (berth up copies it
    in and the hub leaves it alone), so switching back to self-signed replaces it.
    """
    cert, key = data / "tls" / "cert.pem", data / "tls" / "key.pem"
    marker = data / "tls" / layout.SELF_SIGNED_MARKER
    wanted = "\n".join(names)
    if cert.exists() and key.exists() and marker.exists() and marker.read_text() == wanted:
        return False
    pair = tls.self_signed(names)
    write_private(key, pair.key_pem)
    write_private(cert, pair.cert_pem)
    marker.write_text(wanted)
    return True


def main() -> None:
    data = layout.data_dir()
    created = ensure_secrets(data)
    if created:
        print(f"berth: generated {', '.join(created)}", file=sys.stderr)
    names = [n for n in os.environ.get("BERTH_TLS_SELF_SIGNED", "").split(",") if n]
    if not names:  # the operator's certificate is in place (copied in by berth up)
        (data / "tls" / layout.SELF_SIGNED_MARKER).unlink(missing_ok=True)
    elif ensure_self_signed(data, names):
        print(f"berth: made a self-signed certificate for {', '.join(names)}", file=sys.stderr)
    os.chdir(data)  # JupyterHub and the proxy keep their pid and state files here
    # No proxy survives its container's restart, but its pid file (in the volume) does, and a
    # stale one makes JupyterHub believe some unrelated process with that pid is the proxy.
    (data / PROXY_PID_FILE).unlink(missing_ok=True)
    os.execvp("jupyterhub", ["jupyterhub", "-f", layout.CONFIG_FILE])


if __name__ == "__main__":
    main()
