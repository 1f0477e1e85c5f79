"""``ContainerSpawner``: one Docker container per user server (``spawner_class = "berth"``)."""

from __future__ import annotations

import shlex
import time
from collections.abc import AsyncIterator
from typing import Any

import docker.errors
from jupyterhub.spawner import Spawner
from traitlets import default

from berth import names

from . import errors, images, specs
from .build import build_spec, networking, resolve
from .engine import Engine
from .errors import SpawnException
from .progress import ProgressLog
from .readiness import container_address, wait_until_ready
from .settings import ContainerSettings
from .slots import boot_slot
from .volumes import prepare_volumes, remove_interrupted_inits


class ContainerSpawner(ContainerSettings, Spawner):
    """Spawn each user's server in its own Docker container (see docs/spawner.md)."""

    container_id: str = ""
    container_name: str = ""

    @default("ip")
    def _default_ip(self) -> str:
        return "0.0.0.0"

    @default("port")
    def _default_port(self) -> int:
        return 8888

    @default("cmd")
    def _default_cmd(self) -> None:
        return None  # the image's CMD (start-notebook.py -> jupyterhub-singleuser)

    @default("start_timeout")
    def _default_start_timeout(self) -> int:
        return 120

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return images.options_from_form

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._progress = ProgressLog()
        self._starting = False
        self._mem_limit_bytes: int | None = None
        self._cpu_limit: float | None = None

    @property
    def engine(self) -> Engine:
        return Engine(self.docker_url, self.engine_threads, self.engine_timeout)

    @property
    def identity(self) -> specs.Identity:
        return specs.Identity(self.user.name, self.name or "", type(self).__name__, self.prefix)

    # -- names and templates ------------------------------------------------------------------
    def template_namespace(self) -> dict[str, str]:
        """Escaped names (see :mod:`berth.names`) plus JupyterHub's ``base_url``."""
        namespace = names.template_namespace(self.prefix, self.user.name, self.name or "")
        if self.server:
            namespace["base_url"] = self.server.base_url
        return namespace

    def format_string(self, s: str) -> str:
        return names.render(s, self.template_namespace())

    # -- state --------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.container_id:
            state["container_id"] = self.container_id
            state["container_name"] = self.container_name
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.container_id = state.get("container_id", "")
        self.container_name = state.get("container_name", "")

    def clear_state(self) -> None:
        super().clear_state()
        self.container_id = ""
        self.container_name = ""
        # JupyterHub calls this before each start, possibly after the progress stream of the new
        # spawn was opened: start that stream on a fresh log, not the last spawn's events.
        self._progress.reset()

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.pop("MEM_LIMIT", None)
        env.pop("CPU_LIMIT", None)
        if self._mem_limit_bytes:
            env["MEM_LIMIT"] = str(self._mem_limit_bytes)
        if self._cpu_limit:
            env["CPU_LIMIT"] = str(self._cpu_limit)
        return env

    # -- options form -------------------------------------------------------------------------
    async def allowed_image_map(self) -> dict[str, str]:
        return images.normalize_allowed(await resolve(self.allowed_images, self))

    async def get_options_form(self) -> str:
        if self.options_form:
            return str(await super().get_options_form())
        return images.options_form_html(await self.allowed_image_map(), self.image)

    # -- progress -----------------------------------------------------------------------------
    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        async for event in self._progress.follow():
            yield event

    def report(self, event: dict[str, Any]) -> None:
        self._progress.add(event)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> str:
        self._starting = True
        if self._progress.closed:  # not already fresh from clear_state()
            self._progress.reset()
        try:
            return await self._start()
        except SpawnException:
            raise
        except Exception as exc:
            translated = errors.translate("start the server", exc)
            if translated is None:
                raise
            raise translated from exc
        finally:
            self._starting = False
            self._progress.close()

    async def _start(self) -> str:
        engine = self.engine
        self.report({"progress": 5, "message": "Checking the image"})
        image = images.choose_image(
            self.image, await self.allowed_image_map(), self.user_options.get("image")
        )
        image_info = await images.ensure_image(engine, image, self.pull_policy, self.report)
        spec = await self._build_spec(image)
        await self._replace_leftover(engine, spec.name)
        await remove_interrupted_inits(engine, self.identity, self.log)
        await prepare_volumes(
            engine, spec, image_info, self.volume_init_timeout, self.report, self.log
        )

        self.report({"progress": 70, "message": f"Creating container {spec.name}"})
        kwargs = specs.container_create_kwargs(spec)
        try:
            self.container_id = await engine.create_container(kwargs)
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise errors.name_conflict(spec.name) from exc
            raise
        self.container_name = spec.name
        self.log.info("Created container %s (%s) from %s", spec.name, self.container_id[:12], image)
        self.report({"progress": 80, "message": "Starting container"})
        async with boot_slot(self.max_concurrent_boots, self.boot_slot_hold):
            await engine.start_container(self.container_id)
            if self.post_start_cmd:
                await self._post_start()
            record = await engine.inspect_container(self.container_id)
            host, port = container_address(record or {}, spec.networking)
            url = f"http://{host}:{port}"
            if self.wait_for_ready and not self.internal_ssl:
                self.report({"progress": 90, "message": "Waiting for the server to answer"})
                failure = await wait_until_ready(
                    engine,
                    self.container_id,
                    url + self.server.base_url + "api",
                    self.start_timeout,
                )
                if failure is not None:
                    await self._remove_failed()
                    raise self._failure_exception(failure)
        return url

    def _failure_exception(self, record: dict[str, Any]) -> SpawnException:
        state = record.get("State") or {}
        if not record.get("Id") or state.get("Status") in {"removing", "dead"}:
            return errors.removed_while_starting(self.container_name)
        if state.get("OOMKilled"):
            return errors.out_of_memory(self._mem_limit_bytes)
        detail = f"state {state.get('Status')!r}, error {state.get('Error')!r}\n"
        return errors.exited(int(state.get("ExitCode") or 0), detail + record.get("_logs", ""))

    async def _remove_failed(self) -> None:
        if self.remove and self.container_id:
            await self.engine.remove_container(self.container_id)
            self.container_id = ""

    async def _build_spec(self, image: str) -> specs.ContainerSpec:
        mem, cpu = await resolve(self.mem_limit, self), await resolve(self.cpu_limit, self)
        try:
            self._mem_limit_bytes = specs.parse_bytes(mem)
            self._cpu_limit = float(cpu) if cpu else None
        except (TypeError, ValueError) as exc:
            raise errors.bad_config(f"mem_limit/cpu_limit: {exc}") from exc
        return await build_spec(self, image, self._mem_limit_bytes, self._cpu_limit)

    async def _replace_leftover(self, engine: Engine, name: str) -> None:
        """Remove our own container of a previous run; refuse to touch anyone else's."""
        found = await engine.inspect_container(name)
        if found is None:
            return
        if not specs.owned_by(found.get("Config", {}).get("Labels"), self.identity):
            raise errors.name_conflict(name)
        self.log.info("Removing previous container %s of %s", name, self._log_name)
        await engine.remove_container(found["Id"])

    async def _post_start(self) -> None:
        cmd = self.post_start_cmd
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        status, output = await self.engine.exec_run(self.container_id, argv)
        if status != 0:
            self.log.warning(
                "post_start_cmd %s for %s exited %s: %s",
                shlex.join(argv),
                self._log_name,
                status,
                output[-2000:],
            )
            self.report({"message": f"post_start_cmd failed with status {status}"})

    async def get_url(self) -> str:
        if not self.container_id:
            return str(await super().get_url())
        record = await self.engine.inspect_container(self.container_id)
        if not record or not (record.get("State") or {}).get("Running"):
            return str(await super().get_url())
        host, port = container_address(record, networking(self))
        return f"http://{host}:{port}"

    def _container_name(self) -> str:
        return names.render(self.name_template, self.template_namespace())

    async def _reconcile_unrecorded(self) -> bool:
        """After a hub kill mid-spawn: adopt our running container, or clean up; True if adopted.

        JupyterHub saves the spawner's state only when start() returns; when the hub dies in
        between, it restarts with a server record and no container id, and polls. Our
        container, found by its deterministic name and our labels, is adopted if it runs
        (JupyterHub then checks that it answers before routing to it, and stops it if not);
        otherwise it (created, never started, or exited) and any half-done volume preparation
        are removed, so nothing is left that the hub does not know about.
        """
        if self.server is None:
            return False
        engine = self.engine
        found = await engine.inspect_container(self._container_name())
        if found and specs.owned_by(found.get("Config", {}).get("Labels"), self.identity):
            name = found["Name"].lstrip("/")
            if (found.get("State") or {}).get("Running"):
                self.container_id, self.container_name = found["Id"], name
                self.log.warning("Adopted running container %s of %s", name, self._log_name)
                return True
            self.log.warning("Removing unrecorded container %s of %s", name, self._log_name)
            await engine.remove_container(found["Id"])
        await remove_interrupted_inits(engine, self.identity, self.log)
        return False

    async def poll(self) -> int | None:
        if self._starting:
            return None
        if not self.container_id and not await self._reconcile_unrecorded():
            return 0
        try:
            record = await self.engine.inspect_container(self.container_id)
        except Exception as exc:
            if errors.is_unreachable(exc):
                self.log.warning("Engine unreachable while polling %s: %s", self._log_name, exc)
                return None  # we cannot tell; do not declare the server dead
            raise
        if record is None:
            return 0
        state = record.get("State") or {}
        if state.get("Running") or state.get("Restarting"):
            return None
        status = int(state.get("ExitCode") or 0)
        self.log.info(
            "Container %s of %s is %s (exit %s%s)",
            self.container_name,
            self._log_name,
            state.get("Status"),
            status,
            ", OOM-killed" if state.get("OOMKilled") else "",
        )
        if self.remove:
            await self.engine.remove_container(self.container_id)
        return status

    async def stop(self, now: bool = False) -> None:
        if not self.container_id:
            return
        engine = self.engine
        started = time.monotonic()
        await engine.stop_container(self.container_id, timeout=0 if now else self.stop_timeout)
        if self.remove:
            await engine.remove_container(self.container_id)
        self.log.info(
            "Stopped container %s of %s in %.1fs",
            self.container_name,
            self._log_name,
            time.monotonic() - started,
        )

    async def delete_forever(self) -> None:
        """Named volumes are the users' data: Berth never deletes them on its own."""
        self.log.info("Keeping the volumes of %s (delete them with the berth CLI)", self._log_name)
