"""Replacing the service's containers: each new one starts while its predecessor is kept,
stopped, until the new one is ready; a failure puts every predecessor of the run back."""

from __future__ import annotations

import contextlib
import socket
import ssl
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from berth import engine_client
from berth.deploy import layout, pgio, volume_files
from berth.deploy.containerplan import ContainerPlan, files_tar
from berth.deploy.hub import current, sync_routes
from berth.deploy.plan import DeploymentPlan
from berth.errors import BerthError

START_TIMEOUT = 120.0
# How often a starting container is asked whether it is ready: on the path of every `berth up`
# that starts something (the hub answers about 1.5 s after its start; each ask is an inspect and
# a probe).
READY_POLL_SECONDS = 0.1


# The order the service's containers are stopped in, which of them start at once, and the
# order they are waited for (see replace).
ORDER = ("guard", "firewall", "hub", "proxy", "acme", "backup")
FIRST = ("guard", "firewall", "hub")
AFTER_THE_FIREWALL = ("proxy", "acme", "backup")
# The hub first: its probe is an HTTP request from here, while the guard's is a Python run in
# its container (as are acme's and backup's), which would take CPU from the hub's start; a
# ready hub has had the guard answer already (berth.deploy.hub_waits), so that probe passes at once.
WAIT_ORDER = ("firewall", "hub", "proxy", "guard", "acme", "backup")


def up_to_date(container: Container | None, plan: ContainerPlan) -> bool:
    return (
        container is not None
        and container.status == "running"
        and container.labels.get(layout.LABEL_FINGERPRINT) == plan.fingerprint
    )


def start_container(client: docker.DockerClient, plan: ContainerPlan) -> Container:
    own, in_volumes, volumes = volume_files.split(plan)
    if in_volumes:  # before the container exists: its predecessor is stopped, nothing reads them
        volume_files.write(client, plan.create_kwargs["image"], in_volumes, volumes)
    container = client.containers.create(**plan.create_kwargs)
    try:
        if own:
            container.put_archive("/", files_tar(own))
        container.start()
    except APIError as exc:
        container.remove(force=True)
        message = exc.explanation or str(exc)
        published = plan.create_kwargs.get("ports", {}).get(f"{layout.PROXY_PORT}/tcp")
        if published and (
            "address already in use" in message or "port is already allocated" in message
        ):
            raise BerthError(
                f"port {published[1]} on {published[0]} is already in use",
                hint="stop what listens there or set listen.port in berth.yaml",
            ) from exc
        raise BerthError(f"the engine refused to start {plan.name}: {message}") from exc
    return container


@dataclass
class Swap:
    """One container being replaced: the previous one is kept, stopped, until the new is ready."""

    plan: ContainerPlan
    previous: Container | None
    new: Container | None = None

    def begin(self, client: docker.DockerClient) -> None:
        leftover = current(client, self.plan.name + layout.PREVIOUS_SUFFIX)
        if leftover is not None:  # from a run that was cut short
            leftover.remove(force=True)
        if self.previous is not None:
            self.previous.stop(timeout=15)
            self.previous.rename(self.plan.name + layout.PREVIOUS_SUFFIX)

    def undo(self, client: docker.DockerClient) -> None:
        failed = current(client, self.plan.name)
        if failed is not None:
            failed.remove(force=True)
        if self.previous is not None:
            self.previous.rename(self.plan.name)
            self.previous.start()

    def finish(self) -> None:
        if self.previous is not None:
            with contextlib.suppress(NotFound):
                self.previous.remove(force=True)


def replace(client: docker.DockerClient, plan: DeploymentPlan, swaps: list[Swap]) -> None:
    """Start the planned containers in place of the stale ones; if any does not become ready,
    undo every replacement of this run, so a bad change never leaves the service down.

    The guard, the firewall and the hub start together: the hub's start is mostly its Python
    imports, which need neither, and it waits by itself (berth.deploy.hub_waits) for the
    guard's socket before it polls user servers through it, and for the proxy's API. The proxy
    (the service's only way in) starts once the firewall's rules are in place, with berth-acme
    and berth-backup; it waits for the token and certificate the hub writes.
    """
    by_role = {swap.plan.role: swap for swap in swaps}
    roles = [role for role in ORDER if role in by_role]
    begun: list[Swap] = []
    try:
        for role in roles:
            by_role[role].begin(client)
            begun.append(by_role[role])
        start_together(client, [by_role[role] for role in FIRST if role in by_role])
        if "firewall" in by_role:
            wait_ready(by_role["firewall"], plan)
        start_together(client, [by_role[role] for role in AFTER_THE_FIREWALL if role in by_role])
        for role in WAIT_ORDER[1:]:  # each keeps starting while another is waited for
            if role in by_role:
                wait_ready(by_role[role], plan)
    except BaseException:
        for swap in reversed(begun):
            with contextlib.suppress(APIError, NotFound):
                swap.undo(client)
        raise
    for swap in begun:
        swap.finish()
    if "proxy" in by_role and "hub" not in by_role:
        sync_routes(client)


def start_together(client: docker.DockerClient, swaps: list[Swap]) -> None:
    """Start the containers of one step at the same time: each is a few engine calls (write
    the files of its volumes, create, copy its own files in, start) that need not wait for the
    other's. Returns when every start has ended, so an undo finds every container made; the
    first failure is raised then."""
    with ThreadPoolExecutor(max_workers=max(1, len(swaps))) as pool:
        started = [(swap, pool.submit(start_container, client, swap.plan)) for swap in swaps]
    for swap, future in started:
        swap.new = future.result()


def wait_ready(swap: Swap, plan: DeploymentPlan, timeout: float = START_TIMEOUT) -> None:
    """Wait until the new container is healthy, or answers a probe; fail fast when it stops
    (with the one line its entry wrote, when it wrote one)."""
    container = swap.new
    assert container is not None
    probe = _probe(swap.plan.role, plan, container)

    def explain_stop(log: bytes) -> str | None:
        if pgio.ERROR_PREFIX.encode() not in log:
            return None
        return f"{swap.plan.name} did not start: {pgio.last_error(log, '')}"

    engine_client.wait_healthy(
        container,
        swap.plan.name,
        timeout,
        ready=lambda _: probe(),
        interval=READY_POLL_SECONDS,
        ready_before_healthcheck=True,
        explain_stop=explain_stop,
    )


def _probe(role: str, plan: DeploymentPlan, container: Container) -> Callable[[], bool]:
    def guard() -> bool:
        check = ["python3", "-m", "berth.deploy.hubcheck", "engine"]
        return container.exec_run(check).exit_code == 0

    def hub() -> bool:  # the host reaches the Berth network through its bridge
        url = f"http://{plan.network.hub_ip}:{layout.HUB_API_PORT}/hub/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                status: int = answer.status
            return status == 200
        except OSError:
            return False

    def proxy() -> bool:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        published = plan.proxy.create_kwargs["ports"][f"{layout.PROXY_PORT}/tcp"]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(published[0], published[0])
        try:
            with (
                socket.create_connection((host, published[1]), timeout=2) as raw,
                context.wrap_socket(raw),
            ):
                return True
        except OSError:
            return False

    def acme() -> bool:
        check = ["python3", "-m", "berth.deploy.hubcheck", "acme"]
        return container.exec_run(check).exit_code == 0

    def backup() -> bool:
        check = ["python3", "-m", "berth.deploy.hubcheck", "backup"]
        return container.exec_run(check).exit_code == 0

    def firewall() -> bool:  # its healthcheck's command, now rather than in 10 s
        check = plan.firewall.create_kwargs["healthcheck"]["test"][1:]
        return container.exec_run(check, user="root").exit_code == 0

    probes = {"guard": guard, "firewall": firewall, "hub": hub, "proxy": proxy, "acme": acme}
    return {**probes, "backup": backup}.get(role, lambda: False)
