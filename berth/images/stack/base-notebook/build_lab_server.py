"""`jupyter lab` started during base-notebook's build, for the steps that need a real server:
record_start.py (the start-up recording of slim_venv.py) and precompress_static.py check.

`lab_server(home, token)` starts the venv's `jupyter lab` on a free port of 127.0.0.1 with
`token`, HOME=`home` (a temporary directory the caller owns; the server's log goes to
`home/server.log`) and no JUPYTER_*_DIR of the build's environment, waits until /api/status
answers, yields the server, and stops it on the way out (unless the caller already did).
The build fails with the server's log if it exits or does not answer within two minutes.

`get` asks the server, never through a proxy (the build's HTTP(S)_PROXY must not see
loopback requests). Standard library only. Every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VENV = Path(sys.prefix)
START_SECONDS = 120
STOP_SECONDS = 30
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class LabServer:
    base: str  # http://127.0.0.1:<port>
    token: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(
    url: str, token: str, headers: dict[str, str] | None = None, method: str = "GET",
    data: bytes | None = None, timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """(status, headers with lower-case names, body) of one request with the token."""
    ask = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    ask.add_header("Authorization", f"token {token}")
    with LOOPBACK.open(ask, timeout=timeout) as answer:
        return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()


@contextmanager
def lab_server(home: Path, token: str, env: dict[str, str] | None = None) -> Iterator[LabServer]:
    """A running `jupyter lab` (see the module's docstring); `env` is added to the environment."""
    port = free_port()
    log_path = home / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [VENV / "bin" / "jupyter", "lab", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={token}", "--no-browser", f"--notebook-dir={home}"],
            env=environment(home, env), stdout=log, stderr=log,
        )  # fmt: skip
        server = LabServer(f"http://127.0.0.1:{port}", token, process, log_path)
        try:
            wait_until_it_answers(server)
            yield server
        finally:
            stop(process)


def environment(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The build's environment with HOME=`home` and `env`, without its JUPYTER_*_DIR."""
    result = dict(os.environ, HOME=str(home), **(env or {}))
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        result.pop(name, None)
    return result


def wait_until_it_answers(server: LabServer) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            get(f"{server.base}/api/status", server.token, timeout=10)
            return
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise SystemExit(
                    f"build_lab_server: the server did not start:\n{server.log.read_text()}"
                ) from None
            time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_SECONDS)
