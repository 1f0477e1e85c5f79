"""``ContainerSpawner``: one Docker container per user server (``spawner_class = "berth"``)."""

from __future__ import annotations

import asyncio
import os
import shlex
import time

import docker.errors
from traitlets import default

from berth import names

from . import errors, images, specs
from .admission import Policy, admission, queue_message
from .base import BerthSpawner, account_key, resolve
from .build import container_spec
from .engine_api import ContainerRuntime, EngineRecord
from .errors import SpawnException
from .readiness import container_address, wait_until_ready
from .timing import PhaseClock, concurrently
from .volumes import remove_interrupted_inits

__all__ = ["ContainerSpawner", "account_key", "resolve"]

HUB_MARGIN = 15  # seconds of JupyterHub's start_timeout left for its own work around start()


def queue_wait(start_timeout: float, boot_timeout: float) -> float:
    """Longest wait in the boot queue: what JupyterHub's ``start_timeout`` leaves after
    ``boot_timeout`` and the hub's own work, but at least half of it (a ``start_timeout`` set
    lower than ``boot_timeout`` then splits as before: half queue, half boot)."""
    return max(start_timeout - boot_timeout - HUB_MARGIN, start_timeout / 2)


class ContainerSpawner(BerthSpawner):
    """Spawn each user's server in its own Docker container (see docs/spawner.md)."""

    state_fields = ("container_id", "container_name")
    container_id: str = ""
    container_name: str = ""

    @default("start_timeout")
    def _default_start_timeout(self) -> int:
        # JupyterHub's clock runs while a spawn waits in the boot queue; Berth bounds the rest
        # itself (boot_timeout), so JupyterHub's bound is the queue's and the boot's together.
        return 600

    def admission_policy(self) -> Policy:
        return Policy(
            adaptive=self.adaptive_admission,
            ceiling=self.max_concurrent_boots,
            cpus=os.cpu_count() or 2,
            target=self.boot_timeout / 3,
        )

    async def _start(self) -> str:
        budget = asyncio.timeout(self.boot_timeout)
        try:
            async with budget:
                return await self._start_within(budget)
        except TimeoutError as exc:
            if not budget.expired():
                raise
            await self._remove_failed()
            raise errors.boot_timeout(self.boot_timeout) from exc

    async def _build_spec(self, image: str) -> specs.ContainerSpec:
        return container_spec(await self.spec_inputs(image))

    async def _start_within(self, budget: asyncio.Timeout) -> str:
        engine = self.engine
        phases = PhaseClock()
        self.report({"progress": 5, "message": "Checking the image"})
        image = await self.chosen_image()
        # Independent engine round trips run side by side: each costs a few ms on a quiet
        # engine and much more on a busy one.
        image_info, spec = await concurrently(
            images.ensure_image(engine, image, self.pull_policy, self.report),
            self._build_spec(image),
        )
        await concurrently(
            self._replace_leftover(engine, spec.name),
            remove_interrupted_inits(engine, spec.identity, self.log),
        )
        await self.prepare_volumes(spec, image_info)
        phases.lap("prepare")

        self.report({"progress": 70, "message": f"Creating container {spec.name}"})
        kwargs = specs.container_create_kwargs(spec)
        try:
            self.container_id = await engine.create_container(kwargs)
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise errors.name_conflict(spec.name) from exc
            raise
        self.container_name = spec.name
        phases.lap("create")
        self.log.info("Created container %s (%s) from %s", spec.name, self.container_id[:12], image)
        queue = admission()
        queue.policy = self.admission_policy()
        queue.hold_floor = self.boot_slot_hold
        loop = asyncio.get_running_loop()
        left = (budget.when() or loop.time()) - loop.time()
        budget.reschedule(None)  # the time queued is not the boot's

        def on_position(ahead: int, booting: int) -> None:
            self.report({"progress": 75, "message": queue_message(ahead, booting)})

        wait = queue_wait(self.start_timeout, self.boot_timeout)
        async with queue.slot(self.user.name, on_position, wait) as answered:
            budget.reschedule(loop.time() + left)
            phases.lap("slot")
            self.log.info(
                "Boot of %s admitted after %.2fs in the queue (%d booting, limit %s)",
                self._log_name,
                phases.laps["slot"],
                queue.booting,
                queue.limit() or "none",
            )
            self.report({"progress": 80, "message": "Starting container"})
            await engine.start_container(self.container_id)
            if self.post_start_cmd:
                await self._post_start()
            record = await engine.inspect_container(self.container_id)
            host, port = container_address(record or {}, spec.networking)
            url = f"http://{host}:{port}"
            phases.lap("start")
            if self.wait_for_ready and not self.internal_ssl:
                self.report({"progress": 90, "message": "Waiting for the server to answer"})
                left = (budget.when() or 0) - loop.time()
                failure = await wait_until_ready(
                    engine,
                    self.container_id,
                    url + self.server.base_url + "api",
                    max(1.0, left + 1),  # the budget's own timeout ends it with a message
                )
                if failure is not None:
                    await self._remove_failed()
                    raise self._failure_exception(failure, spec.resources.mem_limit)
                phases.lap("boot")
            answered()
        self.log.info("Container %s of %s answers after %s", spec.name, self._log_name, phases)
        return url

    def _failure_exception(self, record: EngineRecord, mem_limit: int | None) -> SpawnException:
        return errors.start_failure(record, mem_limit, self.container_name)

    async def _remove_failed(self) -> None:
        if self.remove and self.container_id:
            await self.engine.remove_container(self.container_id)
            self.container_id = ""

    async def _replace_leftover(self, engine: ContainerRuntime, name: str) -> None:
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
        host, port = container_address(record, self.networking())
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
