"""The hub container's entry: make missing secrets and the self-signed certificate, then exec
JupyterHub. Runs inside the container, so secrets are born in the volumes and never pass through
the host, a log or the container's environment.

Two volumes are written: the data volume (database, cookie secret, auth-state key, the CLI's
token), which only the hub mounts, and the proxy volume (the proxy token and the TLS certificate
and key), which the proxy container mounts read-only: it is everything the proxy may read.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

from berth import hub_container, tls
from berth.deploy import dbupgrade, layout, pgtool
from berth.private_files import write_private

# The secrets' directory, relative to the data volume's root.
SECRETS = Path(hub_container.SECRETS_DIR).relative_to(hub_container.DATA_DIR)


def ensure_secrets(data: Path, proxy: Path) -> list[str]:
    """Create each generated secret that is missing; return the names created."""
    created = []
    wanted = [data / SECRETS / name for name in hub_container.GENERATED_SECRETS]
    wanted.append(proxy / Path(hub_container.PROXY_TOKEN_FILE).name)
    for path in wanted:
        if not path.exists():
            write_private(path, secrets.token_hex(32).encode())
            created.append(path.name)
    return created


def move_legacy_tls(data: Path, proxy: Path) -> bool:
    """Berth before the proxy had its own container kept the certificate in the data volume:
    move it to the proxy volume once, so an upgrade keeps the certificate browsers accepted."""
    old, new = data / "tls", proxy / "tls"
    if not old.exists():
        return False
    moved = not (new / "cert.pem").exists()  # an operator's certificate is there already
    for name in ("key.pem", "cert.pem", layout.SELF_SIGNED_MARKER) if moved else ():
        if (old / name).exists():
            write_private(new / name, (old / name).read_bytes())
    shutil.rmtree(old)  # one copy of the key, in the proxy's volume
    (data / SECRETS / "proxy_token").unlink(missing_ok=True)  # the proxy volume has its own
    return moved


def ensure_self_signed(proxy: Path, names: list[str]) -> bool:
    """(Re)make the self-signed certificate unless the one there was made for these names.

    The marker file records the names; an operator's certificate has none (berth up copies it
    in and the hub leaves it alone), so switching back to self-signed replaces it.
    """
    cert, key = proxy / "tls" / "cert.pem", proxy / "tls" / "key.pem"
    marker = proxy / "tls" / layout.SELF_SIGNED_MARKER
    wanted = "\n".join(names)
    if cert.exists() and key.exists() and marker.exists() and marker.read_text() == wanted:
        return False
    pair = tls.self_signed(names)
    write_private(key, pair.key_pem)
    write_private(cert, pair.cert_pem)
    write_private(marker, wanted.encode())
    return True


def acme_certificate_in_place(proxy: Path) -> bool:
    """A certificate without the self-signed marker, which berth-acme removes when it installs
    its own (berth/acme/service.py)."""
    tls_dir = proxy / "tls"
    return (
        (tls_dir / "cert.pem").exists()
        and (tls_dir / "key.pem").exists()
        and not (tls_dir / layout.SELF_SIGNED_MARKER).exists()
    )


def configured_db_url(config_file: str) -> str:
    """The database URL JupyterHub will use, read the way JupyterHub reads its config."""
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(config_file)
    config = PyFileConfigLoader(path.name, str(path.parent)).load_config()
    return str(config.JupyterHub.get("db_url", ""))


def check_database(config_file: str) -> None:
    """A PostgreSQL database that cannot be used stops the hub here with one plain line
    (`berth: error: …`, which `berth up` shows), not with JupyterHub's traceback."""
    url = configured_db_url(config_file)
    if url.startswith("postgresql"):
        pgtool.check(pgtool.parse_url(url))


def copy_operator_tls(source: Path, proxy: Path) -> bool:
    """On a Swarm the operator's certificate and key arrive as Swarm secrets (tls-cert.pem,
    tls-key.pem in ``source``): copy them where the proxy reads them, when they differ."""
    changed = False
    for secret, name in (("tls-key.pem", "key.pem"), ("tls-cert.pem", "cert.pem")):
        data, target = (source / secret).read_bytes(), proxy / "tls" / name
        if not target.exists() or target.read_bytes() != data:
            write_private(target, data)
            changed = True
    return changed


def main() -> None:
    data, proxy = layout.data_dir(), layout.proxy_dir()
    tls_from = os.environ.get("BERTH_TLS_FROM", "")
    if tls_from and copy_operator_tls(Path(tls_from), proxy):
        print("berth: copied the operator's certificate into the proxy's volume", file=sys.stderr)
    if move_legacy_tls(data, proxy):
        print("berth: moved the certificate to the proxy's volume", file=sys.stderr)
    created = ensure_secrets(data, proxy)
    if created:
        print(f"berth: generated {', '.join(created)}", file=sys.stderr)
    names = [n for n in os.environ.get("BERTH_TLS_SELF_SIGNED", "").split(",") if n]
    if not names:  # the operator's certificate is in place (copied in by berth up)
        (proxy / "tls" / layout.SELF_SIGNED_MARKER).unlink(missing_ok=True)
    elif os.environ.get("BERTH_TLS_ACME") and acme_certificate_in_place(proxy):
        pass  # berth-acme's certificate: it renews it; a self-signed one would replace it
    elif ensure_self_signed(proxy, names):
        print(f"berth: made a self-signed certificate for {', '.join(names)}", file=sys.stderr)
    check_database(hub_container.CONFIG_FILE)
    os.chdir(data)  # JupyterHub keeps its state files here
    # A database from an older JupyterHub (Berth upgraded): backed up, then migrated.
    dbupgrade.run(hub_container.CONFIG_FILE, data / dbupgrade.BACKUP_DIR)
    # berth.deploy.hubapp: JupyterHub without loading every installed plug-in at start.
    hub_command = ["-m", "berth.deploy.hubapp", "-f", hub_container.CONFIG_FILE]
    os.execv(sys.executable, [sys.executable, *hub_command])


if __name__ == "__main__":
    main()
