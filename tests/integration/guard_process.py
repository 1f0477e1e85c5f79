"""The engine guard (``python -m berth.guard``) as a child process of the tests, on a socket."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def guard_process(
    socket_path: Path, log_path: Path, args: list[str], **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """The guard on `socket_path` with `args`, once its socket is there; stopped on the way
    out, and its log printed (pytest shows it beside a failed test)."""
    argv = [sys.executable, "-m", "berth.guard", "--socket", str(socket_path), *args]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, **popen)
    try:
        deadline = time.monotonic() + 30
        while not socket_path.is_socket():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
        print(log_path.read_text())
