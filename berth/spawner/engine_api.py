"""Asynchronous access to the Docker Engine for the spawners.

The spawners and their helpers depend on the typed interfaces below (:class:`ImageStore`,
:class:`VolumeStore`, :class:`ContainerRuntime`, together :class:`EngineAPI`), not on the Docker
class: a back end brings its own implementation (or a narrower one), and tests pass small fakes
that satisfy just the interface a helper asks for. :class:`DockerEngine` is the implementation on
the Docker Engine API.

Every engine call runs in a thread of one process-wide pool with many workers (not one thread
per hub, as DockerSpawner does), and the shared ``docker.APIClient`` keeps an HTTP connection pool
as large as that thread pool, so concurrent spawns really run concurrently: a long image pull
holds one thread and one connection, never the others.

A call that certainly never reached an engine that answered before (the socket refused or
missing: the engine guard restarting after a dockerd restart; or the guard's 503 while its own
socket is stale) is sent again, once a second, for up to ``reconnect_seconds``: the guard is
back within seconds, and a spawn or stop in that gap waits instead of failing. An engine that
never answered in this process fails at once (a wrong address is not worth waiting for).
Pooled connections to a guard that ended were closed by its end, and the connection pool
replaces a closed connection before it uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, Protocol, TypeVar

import docker
import docker.errors
import docker.utils

from .errors import never_sent
from .specs import CreateContainerKwargs, CreateVolumeKwargs

P = ParamSpec("P")
T = TypeVar("T")

# A JSON object as the Engine API returns it: an inspect result, a list summary, a pull record.
EngineRecord = dict[str, Any]

RECONNECT_SECONDS = 30.0  # how long a call that never reached the engine is tried again
RECONNECT_PAUSE = 1.0

_lock = threading.Lock()
_executors: dict[int, ThreadPoolExecutor] = {}
_clients: dict[tuple[str, int, float], docker.APIClient] = {}


def shared_executor(workers: int) -> ThreadPoolExecutor:
    """One pool per size, shared by all spawners of the hub process."""
    with _lock:
        if workers not in _executors:
            _executors[workers] = ThreadPoolExecutor(workers, thread_name_prefix="berth-engine")
        return _executors[workers]


def shared_client(base_url: str, pool_size: int, timeout: float) -> docker.APIClient:
    """One low-level client per engine URL; blocking (call it from a worker thread)."""
    key = (base_url, pool_size, timeout)
    with _lock:
        client = _clients.get(key)
    if client is not None:
        return client
    if base_url:
        client = docker.APIClient(
            base_url=base_url,
            version="auto",
            timeout=timeout,  # type: ignore[arg-type]  # stubs say int; requests takes a float
            max_pool_size=pool_size,
        )
    else:  # DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, as the docker CLI reads them
        env = docker.utils.kwargs_from_env()
        client = docker.APIClient(
            version="auto",
            timeout=timeout,  # type: ignore[arg-type]  # stubs say int; requests takes a float
            max_pool_size=pool_size,
            **env,
        )
    with _lock:
        return _clients.setdefault(key, client)


def label_filters(labels: Mapping[str, str]) -> dict[str, list[str]]:
    """The engine's list filter for objects carrying every one of ``labels``."""
    return {"label": [f"{key}={value}" for key, value in labels.items()]}


def carries(found: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """Whether ``found`` has exactly these label values. The engine's filter narrows the list
    down, but Podman reads ``key=`` (an empty value) as "has the label, any value"."""
    return all((found or {}).get(key) == value for key, value in labels.items())


class ImageStore(Protocol):
    """Where images are looked up and pulled."""

    async def inspect_image(self, image: str) -> EngineRecord | None: ...

    async def list_images(self, labels: Mapping[str, str]) -> list[EngineRecord]:
        """Summaries of the images that carry every one of ``labels``."""
        ...

    async def pull(self, image: str, on_event: Callable[[EngineRecord], None]) -> None: ...


class VolumeStore(Protocol):
    """Named volumes, and the short-lived container that hands a fresh one to its user."""

    async def inspect_volume(self, name: str) -> EngineRecord | None: ...

    async def create_volume(self, kwargs: CreateVolumeKwargs) -> None: ...

    async def list_containers(self, labels: Mapping[str, str]) -> list[EngineRecord]:
        """Summaries of all containers (any state) that carry every one of ``labels``."""
        ...

    async def remove_volume(self, name: str) -> None: ...

    async def remove_container(self, container_id: str) -> None:
        """Removes a volume-init container that a killed hub left behind."""
        ...

    async def run_to_completion(
        self, kwargs: CreateContainerKwargs, timeout: float
    ) -> tuple[int, str]: ...


class ContainerRuntime(Protocol):
    """The lifecycle of one container (or, in another back end, its equivalent)."""

    async def inspect_container(self, name_or_id: str) -> EngineRecord | None: ...

    async def create_container(self, kwargs: CreateContainerKwargs) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout: int) -> None: ...

    async def remove_container(self, container_id: str) -> None: ...

    async def wait_container(self, container_id: str, timeout: float) -> int: ...

    async def logs_tail(self, container_id: str, lines: int = 20) -> str: ...

    async def exec_run(self, container_id: str, cmd: list[str]) -> tuple[int, str]: ...


class EngineAPI(ImageStore, VolumeStore, ContainerRuntime, Protocol):
    """Everything :class:`~berth.spawner.ContainerSpawner` asks of an engine."""


class DockerEngine:
    """The engine operations the spawners need, as coroutines, on the Docker Engine API."""

    def __init__(
        self,
        base_url: str = "",
        workers: int = 32,
        timeout: float = 60.0,
        reconnect_seconds: float = RECONNECT_SECONDS,
    ) -> None:
        self.base_url = base_url
        self.workers = workers
        self.timeout = timeout
        self.reconnect_seconds = reconnect_seconds
        self._executor = shared_executor(workers)

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``func`` (one engine call) in the pool; again while it never reached the engine."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_seconds
        while True:
            ctx = contextvars.copy_context()
            call = functools.partial(ctx.run, func, *args, **kwargs)
            try:
                return await loop.run_in_executor(self._executor, call)
            except Exception as exc:
                if not (never_sent(exc) and self._answered_before()):
                    raise
                if loop.time() + RECONNECT_PAUSE > deadline:
                    raise
            await asyncio.sleep(RECONNECT_PAUSE)

    def _answered_before(self) -> bool:
        """Whether this engine answered in this process (its shared client exists)."""
        with _lock:
            return (self.base_url, self.workers, self.timeout) in _clients

    def _client(self) -> docker.APIClient:
        return shared_client(self.base_url, self.workers, self.timeout)

    async def client(self) -> docker.APIClient:
        return await self.run(self._client)

    # -- containers ---------------------------------------------------------------------------
    async def inspect_container(self, name_or_id: str) -> EngineRecord | None:
        api = await self.client()
        try:
            return await self.run(api.inspect_container, name_or_id)
        except docker.errors.NotFound:
            return None

    async def create_container(self, kwargs: CreateContainerKwargs) -> str:
        api = await self.client()
        kwargs = dict(kwargs)
        kwargs["host_config"] = api.create_host_config(**kwargs["host_config"])
        created = await self.run(api.create_container, **kwargs)
        return str(created["Id"])

    async def start_container(self, container_id: str) -> None:
        api = await self.client()
        await self.run(api.start, container_id)

    async def stop_container(self, container_id: str, timeout: int) -> None:
        api = await self.client()
        with contextlib.suppress(docker.errors.NotFound):
            await self.run(api.stop, container_id, timeout=timeout)

    async def remove_container(self, container_id: str) -> None:
        api = await self.client()
        try:
            await self.run(api.remove_container, container_id, v=False, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or "in progress" not in str(exc):  # already being removed
                raise

    async def list_containers(self, labels: Mapping[str, str]) -> list[EngineRecord]:
        """Summaries of all containers (any state) carrying every one of ``labels``."""
        api = await self.client()
        found = await self.run(api.containers, all=True, filters=label_filters(labels))
        return [item for item in found if carries(item.get("Labels"), labels)]

    async def wait_container(self, container_id: str, timeout: float) -> int:
        api = await self.client()
        # stubs say int; the SDK hands the timeout to requests, which takes a float
        result = await self.run(api.wait, container_id, timeout=timeout)  # type: ignore[arg-type]
        return int(result.get("StatusCode", 0))

    async def logs_tail(self, container_id: str, lines: int = 20) -> str:
        api = await self.client()
        try:
            raw = await self.run(api.logs, container_id, tail=lines)
        except docker.errors.APIError:
            return ""
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    async def exec_run(self, container_id: str, cmd: list[str]) -> tuple[int, str]:
        api = await self.client()
        exec_id = (await self.run(api.exec_create, container_id, cmd))["Id"]
        # exec_start is overloaded on its flags, which a ParamSpec cannot carry: bind them here.
        output = await self.run(lambda: api.exec_start(exec_id))
        info = await self.run(api.exec_inspect, exec_id)
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
        return int(info.get("ExitCode") or 0), text

    # -- images -------------------------------------------------------------------------------
    async def inspect_image(self, image: str) -> EngineRecord | None:
        api = await self.client()
        try:
            return await self.run(api.inspect_image, image)
        except docker.errors.NotFound:
            return None

    async def list_images(self, labels: Mapping[str, str]) -> list[EngineRecord]:
        api = await self.client()
        found = await self.run(api.images, filters=label_filters(labels))
        return [item for item in found if carries(item.get("Labels"), labels)]

    async def pull(self, image: str, on_event: Callable[[EngineRecord], None]) -> None:
        """Pull ``image``, calling ``on_event`` (in the event loop) for each progress record."""
        api = await self.client()
        loop = asyncio.get_running_loop()
        repository, tag = docker.utils.parse_repository_tag(image)

        def consume() -> None:
            stream: Iterator[EngineRecord] = api.pull(
                repository, tag=tag or "latest", stream=True, decode=True
            )
            for record in stream:
                if "error" in record:
                    raise docker.errors.APIError(record["error"])
                loop.call_soon_threadsafe(on_event, record)

        await self.run(consume)

    # -- volumes ------------------------------------------------------------------------------
    async def inspect_volume(self, name: str) -> EngineRecord | None:
        api = await self.client()
        try:
            return await self.run(api.inspect_volume, name)
        except docker.errors.NotFound:
            return None

    async def remove_volume(self, name: str) -> None:
        api = await self.client()
        with contextlib.suppress(docker.errors.NotFound):
            await self.run(api.remove_volume, name)

    async def create_volume(self, kwargs: CreateVolumeKwargs) -> None:
        api = await self.client()
        await self.run(api.create_volume, **kwargs)

    async def run_to_completion(
        self, kwargs: CreateContainerKwargs, timeout: float
    ) -> tuple[int, str]:
        """Create, start, wait for and remove a short-lived container; (exit status, logs)."""
        container_id = await self.create_container(kwargs)
        try:
            await self.start_container(container_id)
            status = await self.wait_container(container_id, timeout)
            logs = await self.logs_tail(container_id, lines=20) if status else ""
            return status, logs
        finally:
            await self.remove_container(container_id)


Engine = DockerEngine  # the name earlier versions used
