"""Engine failures as messages a user can act on.

JupyterHub (6.x) shows a :class:`~jupyterhub.spawner.SpawnException`'s ``message`` on the spawn
page, in the progress event stream and in the REST API's JSON error body, with its
``status_code``; everything else becomes a generic 500. So every failure we can name is raised
as a ``SpawnException`` with a ``reason`` label (also used in JupyterHub's spawn metrics).
"""

from __future__ import annotations

from typing import Any

import docker.errors
import requests.exceptions

from berth.engine_socket import GUARD_ENGINE_DOWN, GUARD_ENGINE_DOWN_STATUS

try:  # JupyterHub 6 (the "as" re-exports it: the spawner modules import it from here)
    from jupyterhub.spawner import SpawnException as SpawnException
except ImportError:  # JupyterHub 5 (pinned: see berth/versions.py)
    from tornado import web

    class SpawnException(web.HTTPError):  # type: ignore[no-redef]
        """JupyterHub 6's SpawnException, for JupyterHub 5.

        JupyterHub 5 shows ``jupyterhub_message`` (and ``jupyterhub_html_message``) of any
        spawn failure to the user and in the REST API, with the HTTPError's status code.
        """

        def __init__(
            self,
            message: str,
            *,
            reason: str,
            log_message: str | None = None,
            message_html: str | None = None,
            status_code: int = 400,
        ) -> None:
            super().__init__(status_code, log_message or message, reason=None)
            self.message = message
            self.reason = reason
            self.jupyterhub_message = message
            if message_html:
                self.jupyterhub_html_message = message_html


REASON_IMAGE = "image"
REASON_IMAGE_NOT_ALLOWED = "image-not-allowed"
REASON_ENGINE = "engine"
REASON_OOM = "oom"
REASON_EXITED = "exited"
REASON_CONFLICT = "name-conflict"
REASON_CONFIG = "config"
REASON_VOLUME = "volume"
REASON_TIMEOUT = "timeout"


# A refused value is shown only this long: it comes from whoever sent the request.
MAX_SHOWN_VALUE = 80


def shorten(value: object) -> str:
    """``repr(value)``, cut to MAX_SHOWN_VALUE characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_VALUE else f"{text[: MAX_SHOWN_VALUE - 3]}..."


def image_not_allowed(requested: object, choices: list[str]) -> SpawnException:
    shown = ", ".join(choices) or "(none)"
    return SpawnException(
        f"Image {shorten(requested)} is not one of the images you may choose: {shown}.",
        reason=REASON_IMAGE_NOT_ALLOWED,
        status_code=403,
    )


def image_missing(image: str, policy: str) -> SpawnException:
    return SpawnException(
        f"The image {image} is not present on this host, and the pull policy ({policy!r}) does "
        "not allow pulling it. Ask an administrator to build or pull it.",
        reason=REASON_IMAGE,
        status_code=400,
    )


def own_image_missing(image: str) -> SpawnException:
    name = image.split("/", 1)[1].split(":", 1)[0].split("@", 1)[0]
    return SpawnException(
        f"The image {image} is not present on this host. Berth's own images are built here, "
        f"never pulled (a registry image of that name is not Berth's): an administrator can "
        f"build it with `berth images build {name}`.",
        reason=REASON_IMAGE,
        status_code=400,
    )


def pull_failed(image: str, detail: str) -> SpawnException:
    return SpawnException(
        f"Could not pull the image {image}: {detail}",
        reason=REASON_IMAGE,
        status_code=502,
    )


def engine_unreachable(detail: str) -> SpawnException:
    return SpawnException(
        "The container engine is not reachable right now, so your server cannot be started. "
        "Please try again later or tell an administrator.",
        log_message=f"Docker engine unreachable: {detail}",
        reason=REASON_ENGINE,
        status_code=503,
    )


def engine_error(action: str, exc: docker.errors.APIError) -> SpawnException:
    # (the stubs say str; an APIError built by hand may carry the response's bytes)
    explanation: str | bytes = exc.explanation or str(exc)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return SpawnException(
        f"The container engine refused to {action}: {explanation}",
        reason=REASON_ENGINE,
        status_code=502,
    )


def name_conflict(name: str) -> SpawnException:
    return SpawnException(
        f"A container named {name} already exists and does not belong to this server. "
        "An administrator has to remove or rename it (or change the name template).",
        reason=REASON_CONFLICT,
        status_code=409,
    )


def out_of_memory(limit: int | None) -> SpawnException:
    shown = f" ({limit // 1024**2} MiB)" if limit else ""
    return SpawnException(
        f"Your server ran out of memory{shown} while starting and was stopped. "
        "Ask an administrator for a higher memory limit.",
        reason=REASON_OOM,
        status_code=500,
    )


def killed_at_memory_limit(limit: int) -> SpawnException:
    """Status 137 (SIGKILL) under a memory limit, from an engine that does not say whether the
    kernel's OOM killer did it (Podman on cgroup v1 never sets ``OOMKilled``)."""
    return SpawnException(
        f"Your server was killed while starting (status 137), most likely because it ran out "
        f"of memory ({limit // 1024**2} MiB). Ask an administrator for a higher memory limit.",
        reason=REASON_OOM,
        status_code=500,
    )


def start_failure(record: dict[str, Any], mem_limit: int | None, name: str) -> SpawnException:
    """Why a container stopped while starting, from its inspect record (plus ``_logs``)."""
    state = record.get("State") or {}
    status = int(state.get("ExitCode") or 0)
    if not record.get("Id") or state.get("Status") in {"removing", "dead"}:
        return removed_while_starting(name)
    if state.get("OOMKilled"):
        return out_of_memory(mem_limit)
    if status == 137 and mem_limit:
        return killed_at_memory_limit(mem_limit)
    detail = f"state {state.get('Status')!r}, error {state.get('Error')!r}\n"
    return exited(status, detail + record.get("_logs", ""))


def exited(status: int, logs: str) -> SpawnException:
    return SpawnException(
        f"Your server exited with status {status} while starting. "
        "An administrator can find its log in the hub's log.",
        log_message=f"container exited with status {status} during start; last lines:\n{logs}",
        reason=REASON_EXITED,
        status_code=500,
    )


def removed_while_starting(name: str) -> SpawnException:
    return SpawnException(
        f"Your server's container ({name}) was removed while it was starting, by something "
        "other than this hub. Please try again.",
        reason=REASON_EXITED,
        status_code=500,
    )


def boot_timeout(seconds: int) -> SpawnException:
    return SpawnException(
        f"Your server did not start within {seconds} seconds (the time it waited for its turn "
        "to boot not counted), so it was stopped. The host may be overloaded: please try again "
        "in a few minutes, or ask an administrator to raise boot_timeout.",
        reason=REASON_TIMEOUT,
        status_code=500,
    )


def bad_config(detail: str) -> SpawnException:
    return SpawnException(
        f"The server cannot be started because of a configuration error: {detail}",
        reason=REASON_CONFIG,
        status_code=500,
    )


def volume_init_failed(volume: str, status: int, logs: str) -> SpawnException:
    return SpawnException(
        f"Could not prepare the volume {volume} for your server (status {status}).",
        log_message=f"volume init for {volume} exited with {status}:\n{logs}",
        reason=REASON_VOLUME,
        status_code=500,
    )


def volume_refused(message: str) -> SpawnException:
    return SpawnException(message, reason=REASON_VOLUME, status_code=409)


def _is_guard_engine_down(exc: BaseException) -> bool:
    """The engine guard's 503: it could not reach the engine (its socket went stale)."""
    if not isinstance(exc, docker.errors.APIError) or exc.status_code != GUARD_ENGINE_DOWN_STATUS:
        return False
    explanation: str | bytes = exc.explanation or ""
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return explanation.startswith(GUARD_ENGINE_DOWN)


def never_sent(exc: BaseException) -> bool:
    """A call that certainly did not reach the engine, so sending it again is safe: connecting
    was refused or the socket is missing (the engine guard restarting), or the guard answered
    that the engine's socket refuses it."""
    if _is_guard_engine_down(exc):
        return True
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError | FileNotFoundError):
            return True
        seen.add(id(cause))
        nested = [a for a in getattr(cause, "args", ()) if isinstance(a, BaseException)]
        cause = nested[0] if nested else cause.__cause__ or cause.__context__
    return False


def is_unreachable(exc: BaseException) -> bool:
    """An engine that does not answer (socket missing, refused, timed out), directly or
    behind the engine guard."""
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if _is_guard_engine_down(exc):
        return True
    if isinstance(exc, docker.errors.DockerException) and not isinstance(
        exc, docker.errors.APIError
    ):
        text = str(exc)
        return "Error while fetching server API version" in text or "Connection" in text
    return False


def translate(action: str, exc: BaseException) -> SpawnException | None:
    """The SpawnException for an engine exception, or None for ones we cannot name."""
    if isinstance(exc, SpawnException):
        return exc
    if is_unreachable(exc):
        return engine_unreachable(str(exc))
    if isinstance(exc, docker.errors.APIError):
        if exc.status_code == 409 and "is already in use" in str(exc):
            return None  # the caller knows the name and raises name_conflict
        return engine_error(action, exc)
    return None
