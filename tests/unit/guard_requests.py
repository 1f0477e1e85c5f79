"""The requests docker-py really sends, captured before they leave the process.

:func:`sent` runs one docker-py call against a client whose transport records the prepared
request and stops there, so unit tests of the engine guard's policy judge exactly the method,
path, headers and body that docker-py would put on the wire (and the spawner's own keyword
arguments go through docker-py's ``create_host_config`` just as in :mod:`berth.spawner.engine_api`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import requests

from berth.guard.policy import Request

API_VERSION = "1.41"


class _Captured(Exception):
    def __init__(self, prepared: requests.PreparedRequest) -> None:
        super().__init__("captured")
        self.prepared = prepared


class _RecordingClient(docker.APIClient):
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        raise _Captured(request)


def client() -> docker.APIClient:
    """A client that never connects (the version is fixed, so no /version round trip)."""
    return _RecordingClient(base_url="unix:///nonexistent/docker.sock", version=API_VERSION)


def sent(call: Callable[[docker.APIClient], Any]) -> Request:
    """The request that ``call(api)`` sends, as the guard's policy sees it."""
    try:
        call(client())
    except _Captured as captured:
        prepared = captured.prepared
        body = prepared.body or b""
        headers = {name.lower(): str(value) for name, value in prepared.headers.items()}
        return Request(
            method=str(prepared.method),
            target=str(prepared.path_url),
            headers=headers,
            body=body.encode() if isinstance(body, str) else bytes(body),
        )
    raise AssertionError("the call sent no request")


def create_container(kwargs: dict[str, Any]) -> Request:
    """``POST /containers/create`` for the spawner's create kwargs (as Engine.create_container)."""

    def call(api: docker.APIClient) -> Any:
        args = dict(kwargs)
        args["host_config"] = api.create_host_config(**args["host_config"])
        return api.create_container(**args)

    return sent(call)
