"""``SwarmSpawner``: each user server is a one-task Swarm service (``spawner_class =
"berth-swarm"``).

Built on :class:`~berth.spawner.base.BerthSpawner` for everything that is not about where the
server runs: settings, names and escaping, labels, the image allow-list and options form,
environment, limits, volumes' templates, progress stream, error translation. The hub talks to
a Swarm manager's Engine API and reaches each server at its task's address on an attachable
overlay network the hub is on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import docker.errors
from tornado.httpclient import AsyncHTTPClient

from berth import fence_signal

from . import errors, specs
from . import swarm_specs as ss
from .base import BerthSpawner, resolve
from .build import container_spec
from .engine_api import EngineRecord
from .errors import SpawnException
from .readiness import _answers
from .swarm_engine import SwarmEngine
from .swarm_settings import SwarmSettings

REASON_SCHEDULE = "no-node"
REASON_VOLUME_NODE = "volume-node"
POLL_DELAY = 0.5


class SwarmSpawner(SwarmSettings, BerthSpawner):
    """Spawn each user's server as a Swarm service with one task (see docs/spawner.md)."""

    state_fields = ("service_id", "task_id", "container_name")
    service_id: str = ""
    task_id: str = ""
    container_name: str = ""  # the service's name
    volume_node: str = ""  # the node holding this server's local volumes (volume_policy "pin")

    def make_engine(self) -> SwarmEngine:
        return SwarmEngine(self.docker_url, self.engine_threads, self.engine_timeout)

    @property
    def swarm(self) -> SwarmEngine:
        engine = self.engine
        assert isinstance(engine, SwarmEngine)
        return engine

    # -- state --------------------------------------------------------------------------------
    # The volume's node outlives the server (clear_state keeps it): it is where the files are.
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.volume_node:
            state["volume_node"] = self.volume_node
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.volume_node = state.get("volume_node", self.volume_node)

    # -- start --------------------------------------------------------------------------------
    async def _start(self) -> str:
        self.report({"progress": 5, "message": "Checking the image"})
        image = await self.chosen_image()  # refused (403) before anything touches the Swarm
        spec = await self._service_spec(image)
        engine = self.swarm
        if not self.network_name:
            raise errors.bad_config("SwarmSpawner.network_name must name an attachable overlay")
        network = await engine.inspect_network(self.network_name)
        if network is None or network.get("Scope") != "swarm":
            raise errors.bad_config(f"network {self.network_name!r} is not a Swarm overlay network")
        await self._check_volume_node(engine, spec)
        await self._replace_leftover(engine, spec.name)

        self.report({"progress": 20, "message": f"Creating service {spec.name}"})
        try:
            self.service_id = await engine.create_service(ss.service_create_kwargs(spec))
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise errors.name_conflict(spec.name) from exc
            raise
        self.container_name = spec.name
        self.log.info("Created service %s (%s) from %s", spec.name, self.service_id[:12], image)
        reserved = ss.describe_reservation(spec.resources)
        try:
            return await self._follow_task(engine, network["Id"], reserved, spec.resources)
        except BaseException:
            await self._remove_service()
            raise

    async def _service_spec(self, image: str) -> ss.ServiceSpec:
        base = container_spec(await self.spec_inputs(image))
        if base.device_requests:
            # A service has no device requests (only generic resources a node advertises):
            # starting it without the GPUs the choice promised would be a silent downgrade.
            raise errors.bad_config(
                f"{image} comes with GPUs (the gpus setting), which the Swarm back end cannot "
                "give a server; remove it from gpus or use the single-host back end"
            )
        constraints = list(await resolve(self.placement_constraints, self) or [])
        spread = list(await resolve(self.placement_spread, self) or [])
        per_image = self.image_placement.get(image) or {}
        constraints += list(per_image.get("constraints") or [])
        spread += list(per_image.get("spread") or [])
        # Only the user's own volumes pin a server; shared ones (no {username}) exist anywhere.
        has_volumes = any(m.per_user and not m.is_host_path for m in base.mounts)
        shared = self.volume_policy == "shared"
        if shared and self.volume_driver == "local" and not self.volume_driver_options:
            raise errors.bad_config(
                "volume_policy 'shared' needs volume_driver or volume_driver_options naming "
                "shared storage (the plain local driver keeps each volume on one node)"
            )
        driver = ss.VolumeDriver(
            self.volume_driver if shared else "local",
            ss.render_driver_options(self.volume_driver_options, self.template_namespace())
            if shared
            else {},
        )
        command = base.command
        if self.fence_wait > 0:
            # The server's command (and any code of the user's) starts only once it is fenced.
            command = fence_signal.wait_then(
                list(command or await self._image_command(image)), self.fence_wait
            )
        return ss.ServiceSpec(
            name=base.name,
            image=image,
            identity=self.identity,
            network_name=self.network_name,
            command=command,
            environment=base.environment,
            mounts=base.mounts,
            volume_driver=driver,
            resources=base.resources,
            privileges=base.privileges,
            placement=ss.Placement(tuple(constraints), tuple(spread)),
            stop_grace_seconds=self.stop_timeout,
            pinned_node=self.volume_node if (has_volumes and not shared) else "",
            extra_task_template=await resolve(self.extra_task_template, self) or {},
        )

    async def _image_command(self, image: str) -> list[str]:
        """The image's CMD (the wait goes in front of it; the ENTRYPOINT stays), read on the
        manager, which pulls the image first if it does not have it."""
        if self.image_commands.get(image):
            return list(self.image_commands[image])
        engine = self.engine
        record = await engine.inspect_image(image)
        if record is None:
            self.report({"progress": 10, "message": f"Reading {image}'s command"})
            await engine.pull(image, lambda _: None)
            record = await engine.inspect_image(image) or {}
        command = list((record.get("Config") or {}).get("Cmd") or [])
        if not command:
            raise errors.bad_config(
                f"{image} has no CMD, so the wait for berth-fence has nothing to start: set "
                "Spawner.cmd (or SwarmSpawner.fence_wait = 0 without the fence)"
            )
        return command

    async def _check_volume_node(self, engine: SwarmEngine, spec: ss.ServiceSpec) -> None:
        """Refuse to start away from the user's files: their node must be there and active."""
        if not spec.pinned_node:
            return
        node = await engine.inspect_node(spec.pinned_node)
        if node is None:
            raise SpawnException(
                f"Your files are on Swarm node {spec.pinned_node[:12]}, which has left the "
                "Swarm. Your server is not started elsewhere, where your home would be empty; "
                "an administrator must move your volume (or reset your server's node).",
                reason=REASON_VOLUME_NODE,
                status_code=503,
            )
        name = (node.get("Description") or {}).get("Hostname", spec.pinned_node[:12])
        state = (node.get("Status") or {}).get("State")
        availability = (node.get("Spec") or {}).get("Availability")
        if state != "ready" or availability != "active":
            why = "down" if state != "ready" else f"set to {availability!r}"
            raise SpawnException(
                f"Your files are on Swarm node {name}, which is {why}. Your server is not "
                "started on another node, where your home would be empty: try again when that "
                "node is back, or ask an administrator.",
                reason=REASON_VOLUME_NODE,
                status_code=503,
            )

    async def _replace_leftover(self, engine: Any, name: str) -> None:
        """Remove our own service of a previous run; refuse to touch anyone else's."""
        found = await engine.inspect_service(name)
        if found is None:
            return
        if not specs.owned_by((found.get("Spec") or {}).get("Labels"), self.identity):
            raise errors.name_conflict(name)
        self.log.info("Removing previous service %s of %s", name, self._log_name)
        await engine.remove_service(found["ID"])

    async def _follow_task(
        self, engine: SwarmEngine, network_id: str, reserved: str, res: specs.Resources
    ) -> str:
        """Report the task's states until its server answers; fail as soon as it cannot."""
        client = AsyncHTTPClient(force_instance=True)
        deadline = time.monotonic() + self.start_timeout
        last_message = ""
        pending_since: float | None = None
        node_names: dict[str, str] = {}
        try:
            while time.monotonic() < deadline:
                record = ss.current_task(await engine.tasks(self.service_id))
                if record is None:
                    await asyncio.sleep(POLL_DELAY)
                    continue
                self.task_id = str(record.get("ID", ""))
                view = ss.task_view(record, network_id)
                node_name = await self._node_name(engine, view.node_id, node_names)
                if view.state in ss.TERMINAL_STATES:
                    raise self._task_failure(view, node_name, res.mem_limit)
                event = ss.progress_event(view, node_name, reserved)
                if event and event["message"] != last_message:
                    self.report(event)
                    last_message = event["message"]
                if view.state == "pending" and view.error:
                    pending_since = pending_since or time.monotonic()
                    if time.monotonic() - pending_since > self.schedule_timeout:
                        raise SpawnException(
                            "Your server could not be started: "
                            + ss.scheduler_reason(view.error, reserved),
                            reason=REASON_SCHEDULE,
                            status_code=503,
                        )
                else:
                    pending_since = None
                if view.state in {"starting", "running"} and view.addresses:
                    url = f"http://{view.addresses[0]}:{self.port}"
                    if not self.wait_for_ready or await _answers(
                        client, url + self.server.base_url + "api"
                    ):
                        self._remember_node(view.node_id)
                        self.log.info("%s runs on node %s at %s", self._log_name, node_name, url)
                        return url
                await asyncio.sleep(POLL_DELAY)
        finally:
            client.close()
        raise SpawnException(
            f"Your server did not answer within {self.start_timeout} seconds ({last_message}).",
            reason=errors.REASON_EXITED,
            status_code=500,
        )

    async def _node_name(self, engine: SwarmEngine, node_id: str, cache: dict[str, str]) -> str:
        if not node_id:
            return ""
        if node_id not in cache:
            node = await engine.inspect_node(node_id) or {}
            cache[node_id] = (node.get("Description") or {}).get("Hostname", node_id[:12])
        return cache[node_id]

    def _remember_node(self, node_id: str) -> None:
        if self.volume_policy == "pin" and node_id:
            mounts = specs.mounts_from_config(
                self.volumes, self.read_only_volumes, self.template_namespace()
            )
            if any(m.per_user and not m.is_host_path for m in mounts):
                self.volume_node = node_id

    def _task_failure(
        self, view: ss.TaskView, node_name: str, mem_limit: int | None
    ) -> SpawnException:
        if view.exit_code == 137 and mem_limit:
            return errors.out_of_memory(mem_limit)
        return SpawnException(
            ss.failure_message(view, node_name), reason=errors.REASON_EXITED, status_code=500
        )

    async def _remove_service(self) -> None:
        if self.service_id:
            try:
                await self.swarm.remove_service(self.service_id)
            except Exception as exc:  # the original failure matters more
                self.log.warning("Could not remove service %s: %s", self.service_id[:12], exc)
            self.service_id = ""

    # -- running ------------------------------------------------------------------------------
    async def _task_record(self) -> EngineRecord | None:
        engine = self.swarm
        if self.task_id:
            return await engine.inspect_task(self.task_id)
        return ss.current_task(await engine.tasks(self.service_id)) if self.service_id else None

    async def get_url(self) -> str:
        if not self.service_id:
            return str(await super().get_url())
        network = await self.swarm.inspect_network(self.network_name) or {}
        record = await self._task_record()
        view = ss.task_view(record or {}, network.get("Id", ""))
        if view.state != "running" or not view.addresses:
            return str(await super().get_url())
        return f"http://{view.addresses[0]}:{self.port}"

    async def poll(self) -> int | None:
        if self._starting:
            return None
        if not self.service_id:
            return 0
        engine = self.swarm
        try:
            service = await engine.inspect_service(self.service_id)
            record = await self._task_record() if service else None
            node = None
            if record and record.get("NodeID"):
                node = await engine.inspect_node(record["NodeID"])
        except Exception as exc:
            if errors.is_unreachable(exc):
                self.log.warning(
                    "Swarm manager unreachable while polling %s: %s", self._log_name, exc
                )
                return None
            raise
        if service is None or record is None:
            return 0
        view = ss.task_view(record)
        node_state = ((node or {}).get("Status") or {}).get("State")
        # Only "down" means dead: "unknown"/"disconnected" can be a passing network hiccup, and
        # declaring the server dead removes its service.
        if view.state not in ss.TERMINAL_STATES and node_state != "down":
            return None
        # The task ended, or its node is down (the manager may still list it as running).
        status = view.exit_code or 1
        self.log.info(
            "Service %s of %s has ended: task %s, node %s (exit %s): %s",
            self.container_name,
            self._log_name,
            view.state,
            node_state,
            view.exit_code,
            view.error or view.message,
        )
        await self._remove_service()  # never restarted elsewhere behind the hub's back
        return status

    async def stop(self, now: bool = False) -> None:
        if not self.service_id:
            return
        started = time.monotonic()
        await self.swarm.remove_service(self.service_id)  # the node stops the container
        self.log.info(
            "Removed service %s of %s in %.1fs",
            self.container_name,
            self._log_name,
            time.monotonic() - started,
        )
