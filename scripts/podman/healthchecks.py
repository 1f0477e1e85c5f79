#!/usr/bin/env python3
"""Run the HEALTHCHECKs of a Podman service's containers, on a host without systemd.

Podman has no scheduler of its own for healthchecks: it asks systemd for a timer per container
(`podman healthcheck run <id>` every interval). Where systemd is not PID 1 (a container, a CI
runner, this sandbox) no check ever runs and every container stays "starting" for ever, so
nothing that waits for "healthy" (`berth run`, `berth up`) finishes. This loop is that timer:
each running container with a healthcheck gets its check run once per interval through the
service's own API (the libpod healthcheck endpoint records the result, counts the failing
streak and honours the start period, as the timer would). Python's standard library only.

    healthchecks.py /run/berth-podman/podman.sock      (started and stopped by start-podman.sh)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

API = "/v4.0.0/libpod"
TICK = 1.0  # seconds between looks at the list of running containers
DEFAULT_INTERVAL = 30.0  # Docker's and Podman's default


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


def get(sock_path: str, path: str, timeout: float = 30.0) -> Any:
    conn = UnixConnection(sock_path, timeout)
    try:
        conn.request("GET", API + path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return json.loads(body) if response.status < 300 and body else None


def interval_of(sock_path: str, container_id: str) -> float | None:
    """The container's healthcheck interval in seconds, or None when it has no check."""
    info = get(sock_path, f"/containers/{container_id}/json") or {}
    check = (info.get("Config") or {}).get("Healthcheck") or {}
    test = check.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    nanos = check.get("Interval") or 0
    return nanos / 1e9 if nanos > 0 else DEFAULT_INTERVAL


def run_check(sock_path: str, container_id: str) -> None:
    quoted = urllib.parse.quote(container_id, safe="")
    # OSError: the container went away meanwhile, or the service restarts: next round.
    with contextlib.suppress(OSError):
        get(sock_path, f"/containers/{quoted}/healthcheck", timeout=120.0)


def main(sock_path: str) -> None:
    intervals: dict[str, float | None] = {}
    due: dict[str, float] = {}
    running: dict[str, Future[None]] = {}
    with ThreadPoolExecutor(8, thread_name_prefix="healthcheck") as pool:
        while True:
            try:
                listed = get(sock_path, "/containers/json") or []
            except OSError:
                time.sleep(TICK)  # the service is not (yet, or no longer) answering
                continue
            now = time.monotonic()
            alive = {str(item["Id"]) for item in listed}
            for gone in set(intervals) - alive:
                intervals.pop(gone, None)
                due.pop(gone, None)
            for container_id in alive:
                if container_id not in intervals:
                    try:
                        intervals[container_id] = interval_of(sock_path, container_id)
                    except OSError:
                        continue
                    # The first check after one interval, as Docker does.
                    due[container_id] = now + (intervals[container_id] or 0)
                interval = intervals[container_id]
                if interval is None or now < due[container_id]:
                    continue
                busy = running.get(container_id)
                if busy is not None and not busy.done():
                    continue
                due[container_id] = now + interval
                running[container_id] = pool.submit(run_check, sock_path, container_id)
            for finished in [key for key, future in running.items() if future.done()]:
                running.pop(finished)
            time.sleep(TICK)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with contextlib.suppress(KeyboardInterrupt):
        main(sys.argv[1])
