"""A container run to its end for its output, bounded in time on Docker and on Podman.

The docker SDK's ``containers.run(..., remove=True)`` (not detached) opens a *following* log
stream, waits for the exit, removes the container, and only then reads that stream, with the
socket's timeout turned off. Docker ends the stream when the container exits. Podman 4.3 ends it
only if its log follower saw the exit before the removal: otherwise the stream stays open and the
call never returns (CI's Podman job hung so in test_isolation.py's first fixture; here about one
run in a hundred, tried in a loop). This reads the logs after the exit instead, without
following, and removes the container in any case.
"""

from __future__ import annotations

from typing import Any

import docker
import requests

#: How long a one-shot container may run (the engines are slow at times, with everyone on them).
TIMEOUT = 120


def run_once(
    client: docker.DockerClient, image: str, command: list[str] | None = None, **kwargs: Any
) -> bytes:
    """``containers.run(image, command, remove=True, **kwargs)``'s stdout, or its
    ContainerError (with stderr) on a non-zero status; TimeoutError past ``TIMEOUT``."""
    container = client.containers.create(image, command, **kwargs)
    try:
        container.start()
        try:
            status = container.wait(timeout=TIMEOUT)["StatusCode"]
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as error:
            raise TimeoutError(f"{container.name} still running after {TIMEOUT} s") from error
        if status != 0:
            stderr = container.logs(stdout=False, stderr=True)
            raise docker.errors.ContainerError(container, status, command, image, stderr)
        return bytes(container.logs(stdout=True, stderr=False))
    finally:
        container.remove(force=True)
