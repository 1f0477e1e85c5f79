"""Writing a file that holds a secret (a key, a token, a certificate's key pair): readable by
its owner only, and replaced whole, so that a reader (the proxy loading the certificate, a
restarted hub) sees the old bytes or the new ones, never a part. A ground-floor module: the hub
container's entry and the ACME client both write their files through it."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, mode 600 (its directory made with mode 700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(partial, 0o600)  # an existing partial file (a crash) kept its old mode
    os.replace(partial, path)
