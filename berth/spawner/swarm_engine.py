"""The Swarm operations the Swarm spawner needs, as coroutines, on a manager's Engine API."""

from __future__ import annotations

import contextlib

import docker.errors

from .engine_api import DockerEngine, EngineRecord
from .swarm_specs import ServiceCreateKwargs


class SwarmEngine(DockerEngine):
    """`DockerEngine` (shared thread pool and client) plus services, tasks, nodes, networks."""

    async def create_service(self, kwargs: ServiceCreateKwargs) -> str:
        api = await self.client()
        created = await self.run(api.create_service, **kwargs)
        return str(created["ID"])

    async def inspect_service(self, name_or_id: str) -> EngineRecord | None:
        api = await self.client()
        try:
            return await self.run(api.inspect_service, name_or_id)
        except docker.errors.NotFound:
            return None

    async def remove_service(self, name_or_id: str) -> None:
        api = await self.client()
        with contextlib.suppress(docker.errors.NotFound):
            await self.run(api.remove_service, name_or_id)

    async def tasks(self, service_id: str) -> list[EngineRecord]:
        api = await self.client()
        return list(await self.run(api.tasks, filters={"service": service_id}))

    async def inspect_task(self, task_id: str) -> EngineRecord | None:
        api = await self.client()
        try:
            return await self.run(api.inspect_task, task_id)
        except docker.errors.NotFound:
            return None

    async def inspect_node(self, node_id: str) -> EngineRecord | None:
        api = await self.client()
        try:
            return await self.run(api.inspect_node, node_id)
        except docker.errors.NotFound:
            return None

    async def inspect_network(self, name: str) -> EngineRecord | None:
        api = await self.client()
        try:
            return await self.run(api.inspect_network, name)
        except docker.errors.NotFound:
            return None
