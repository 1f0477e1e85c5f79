"""A real multi-node Docker Swarm on this one machine, for the Swarm spawner's tests and bench.

Layout (everything on the host engine is named ``berth-swarm-<run>-…`` and removed by
:meth:`Cluster.cleanup`, also after failures)::

    host engine
    └── bridge network  berth-swarm-<run>-net
        ├── node-0  (container running Debian's dockerd; Swarm manager)
        │     ├── service  berth-swarm-registry   Debian's docker-registry, port 5000 (host mode)
        │     └── container berth-swarm-hub       JupyterHub + CHP, on the overlay (optional)
        ├── node-1  (worker)
        └── node-2  (worker)
    overlay network berth-swarm-overlay (attachable; the hub and the users' servers)

Why it is built this way (all seen on this sandbox):

* ``--privileged`` fails here (no CAP_SYS_RESOURCE), so nodes get every other capability,
  unconfined seccomp/AppArmor, a tmpfs ``/run``, the host's cgroup tree and a volume for
  ``/var/lib/docker`` (overlay2 cannot sit on overlay2).
* The host engine must not join any Swarm (it is shared), and a host process cannot join an
  overlay network. So the hub runs *in* the cluster: a container on the manager node attached to
  the attachable overlay, reached from the host through a port the manager node publishes on its
  bridge address. Hub <-> server traffic stays on the overlay.
* Service virtual IPs do not answer here (no IPVS in the sandbox) and the ingress routing mesh
  neither: services use ``endpoint_mode: dnsrr`` and ports are published in host mode.
* Images reach the nodes through the registry: the host's image is streamed into the manager's
  engine (``docker save`` -> ``load`` through the API), tagged ``node-0:5000/…`` and pushed; the
  other nodes pull it (each node's dockerd treats ``node-0:5000`` as an insecure registry; the
  traffic is on the test bridge only).
* Each node's dockerd also listens on plain TCP 2375 **on the test bridge only**, so the test
  process drives every node through the docker SDK. Test-only: never do this in a deployment.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from nested_engine import copy_image, host_nameservers

NODE_IMAGE = "berth-swarm-node:test"
NODE_DOCKERFILE_DIR = Path(__file__).parent / "swarm_node"
REGISTRY_IMAGE = "berth/registry:latest"
REGISTRY_SERVICE = "berth-swarm-registry"
REGISTRY_PORT = 5000
OVERLAY = "berth-swarm-overlay"
ENGINE_PORT = 2375
SHARED_MOUNT = "/srv/berth-shared"  # in every node: one host directory, "shared storage"
SRC_DIR = Path(__file__).resolve().parents[1]

NODE_RUN_OPTIONS: dict[str, Any] = {
    "cap_add": ["ALL"],
    "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
    "tmpfs": {"/run": ""},
}


@dataclass
class Node:
    name: str
    container: Any
    address: str = ""
    client: Any = None  # docker.DockerClient of this node's engine
    node_id: str = ""

    @property
    def api(self) -> Any:
        return self.client.api


@dataclass
class Cluster:
    size: int = 3
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    host: Any = field(default_factory=lambda: docker.from_env(timeout=300))
    nodes: list[Node] = field(default_factory=list)
    network: Any = None
    shared_dir: Path | None = None
    # The test registry on the manager's port 5000; off when `berth up` runs its own there.
    with_registry: bool = True

    @property
    def prefix(self) -> str:
        return f"berth-swarm-{self.run_id}"

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    @property
    def registry(self) -> str:
        return f"{self.manager.name}:{REGISTRY_PORT}"

    # -- bring-up -----------------------------------------------------------------------------
    def start(self) -> Cluster:
        ensure_node_image(self.host)
        # Stands in for NFS: the same host directory in every node, for volume_policy "shared".
        self.shared_dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-shared-"))
        self.network = self.host.networks.create(f"{self.prefix}-net", driver="bridge")
        for i in range(self.size):
            self.nodes.append(self._start_node(f"{self.prefix}-node-{i}"))
        for node in self.nodes:
            self._wait_engine(node)
        self._form_swarm()
        self.manager.client.networks.create(
            OVERLAY, driver="overlay", attachable=True, labels={"berth-test": self.run_id}
        )
        if self.with_registry:
            self._start_registry()
        return self

    def _start_node(self, name: str) -> Node:
        registry = f"{self.prefix}-node-0:{REGISTRY_PORT}"
        container = self.host.containers.run(
            NODE_IMAGE,
            [
                "dockerd",
                f"--insecure-registry={registry}",
                "-H",
                "unix:///var/run/docker.sock",
                "-H",
                f"tcp://0.0.0.0:{ENGINE_PORT}",
                *(f"--dns={address}" for address in host_nameservers()),
            ],
            name=name,
            hostname=name,
            detach=True,
            network=self.network.name,
            labels={"berth-test": self.run_id},
            volumes={
                f"{name}-data": {"bind": "/var/lib/docker", "mode": "rw"},
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                str(SRC_DIR): {"bind": "/src", "mode": "ro"},
                str(self.shared_dir): {"bind": SHARED_MOUNT, "mode": "rw"},
            },
            **NODE_RUN_OPTIONS,
        )
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]
        return Node(name=name, container=container, address=address)

    def _wait_engine(self, node: Node, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                client = docker.DockerClient(
                    base_url=f"tcp://{node.address}:{ENGINE_PORT}", timeout=300
                )
                client.ping()
                node.client = client
                return
            time.sleep(0.5)
        logs = node.container.logs(tail=30).decode(errors="replace")
        raise RuntimeError(f"dockerd in {node.name} did not answer:\n{logs}")

    def _form_swarm(self) -> None:
        manager = self.manager
        manager.client.swarm.init(advertise_addr=manager.address, listen_addr="0.0.0.0:2377")
        token = manager.client.swarm.attrs["JoinTokens"]["Worker"]
        for node in self.nodes[1:]:
            try:
                node.client.swarm.join(
                    remote_addrs=[f"{manager.address}:2377"],
                    join_token=token,
                    advertise_addr=node.address,
                    listen_addr="0.0.0.0:2377",
                )
            except docker.errors.APIError as exc:
                if "continue in the background" not in str(exc):  # a slow machine: wait
                    raise
            self._wait_joined(node)
        by_name = {n.attrs["Description"]["Hostname"]: n.id for n in self.swarm_nodes()}
        for node in self.nodes:
            node.node_id = by_name[node.name]

    def _wait_joined(self, node: Node, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.client.info()["Swarm"]["LocalNodeState"] == "active":
                return
            time.sleep(1)
        raise RuntimeError(f"{node.name} did not join the Swarm")

    def swarm_nodes(self) -> list[Any]:
        return list(self.manager.client.nodes.list())

    def _start_registry(self) -> None:
        copy_image(self.host, self.manager.client, REGISTRY_IMAGE)
        self.manager.client.services.create(
            REGISTRY_IMAGE,
            name=REGISTRY_SERVICE,
            constraints=["node.role==manager"],
            endpoint_spec=docker.types.EndpointSpec(
                mode="dnsrr", ports={REGISTRY_PORT: (REGISTRY_PORT, "tcp", "host")}
            ),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                url = f"http://{self.manager.address}:{REGISTRY_PORT}/v2/"
                if requests.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("the registry service did not answer")

    def publish(self, image: str) -> str:
        """Copy ``image`` from the host into the registry; the name every node pulls it by."""
        copy_image(self.host, self.manager.client, image)
        target = f"{self.registry}/{image}"
        repository, tag = docker.utils.parse_repository_tag(target)
        self.manager.api.tag(image, repository, tag or "latest")
        for record in self.manager.api.push(repository, tag or "latest", stream=True, decode=True):
            if "error" in record:
                raise RuntimeError(f"push {target}: {record['error']}")
        return target

    # -- berth-fence --------------------------------------------------------------------------
    FENCE = "berth-fence"

    def start_fence(self, hub: str, relays: tuple[str, ...] = (), wait: bool = True) -> None:
        """berth-fence as a global service on every node (the service `berth up` makes, with
        this worktree's ``berth`` from each node's /src), fencing the servers on the overlay."""
        from berth.deploy.fence import FenceSpec, fence_service_kwargs

        image = self.publish("berth/hub:latest")
        kwargs = fence_service_kwargs(FenceSpec(OVERLAY, hub, relays=relays), image)
        container = kwargs["task_template"]["ContainerSpec"]
        container["Env"].append("PYTHONPATH=/src")
        container["Mounts"].append(
            {"Type": "bind", "Source": "/src", "Target": "/src", "ReadOnly": True}
        )
        self.manager.api.create_service(**kwargs)
        if wait:
            self.wait_fence_running()

    def wait_fence_running(self, timeout: float = 180) -> None:
        """Until the fence's task runs on every node (and says so in its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = 0
            for node in self.nodes:
                found = node.client.containers.list(
                    filters={"label": f"com.docker.swarm.service.name={self.FENCE}"}
                )
                if found and b"watching user servers" in found[0].logs():
                    ready += 1
            if ready == len(self.nodes):
                return
            time.sleep(1)
        raise RuntimeError(f"berth-fence is not running on every node:\n{self.fence_logs()}")

    def stop_fence(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.manager.api.remove_service(self.FENCE)
        deadline = time.monotonic() + 60
        label = {"label": f"com.docker.swarm.service.name={self.FENCE}"}
        while time.monotonic() < deadline:
            if not any(n.client.containers.list(all=True, filters=label) for n in self.nodes):
                return
            time.sleep(0.5)
        raise RuntimeError("berth-fence's containers did not go away")

    def fence_logs(self, lines: int = 30) -> str:
        out = []
        label = {"label": f"com.docker.swarm.service.name={self.FENCE}"}
        for node in self.nodes:
            with contextlib.suppress(Exception):
                for container in node.client.containers.list(all=True, filters=label):
                    out.append(f"-- {node.name}:\n" + container.logs(tail=lines).decode())
        return "\n".join(out)

    # -- the test hub -------------------------------------------------------------------------
    def start_hub(self, config: str, name: str = "berth-swarm-hub", port: int = 8000) -> str:
        """Run JupyterHub (+ CHP) from berth/hub on the manager, on the overlay, with this
        worktree's ``berth`` package first on its path. Returns the hub's URL for the host."""
        node = self.manager
        copy_image(self.host, node.client, "berth/hub:latest")
        hub = node.client.containers.create(
            "berth/hub:latest",
            ["jupyterhub", "-f", "/tmp/jupyterhub_config.py"],
            name=name,
            user="root",  # the manager's socket (test-only; `berth up` adds the socket's group)
            working_dir="/tmp",
            environment={"PYTHONPATH": "/src"},
            network=OVERLAY,
            ports={"8000/tcp": ("0.0.0.0", port)},
            volumes={
                "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                "/src": {"bind": "/src", "mode": "ro"},
            },
            labels={"berth-test": self.run_id},
        )
        hub.put_archive("/tmp", tar_of({"jupyterhub_config.py": config}))
        hub.start()
        url = f"http://{node.address}:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            hub.reload()
            if hub.status not in {"created", "running"}:
                raise RuntimeError("hub exited:\n" + hub.logs(tail=60).decode(errors="replace"))
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/hub/api/", timeout=2).status_code == 200:
                    return url
            time.sleep(0.5)
        raise RuntimeError("hub did not come up:\n" + hub.logs(tail=60).decode(errors="replace"))

    def hub_logs(self, name: str = "berth-swarm-hub", lines: int = 80) -> str:
        with contextlib.suppress(Exception):
            return str(
                self.manager.client.containers.get(name).logs(tail=lines).decode(errors="replace")
            )
        return ""

    # -- faults -------------------------------------------------------------------------------
    def drain(self, node: Node) -> None:
        self.set_availability(node, "drain")

    def set_availability(self, node: Node, availability: str) -> None:
        swarm_node = self.manager.client.nodes.get(node.node_id)
        spec = dict(swarm_node.attrs["Spec"])
        spec["Availability"] = availability
        swarm_node.update(spec)

    def kill(self, node: Node) -> None:
        """Kill the node's container outright: its engine and every task on it die at once."""
        node.container.kill()

    def wait_node_down(self, node: Node, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.manager.client.nodes.get(node.node_id).attrs["Status"]["State"]
            if state == "down":
                return
            time.sleep(1)
        raise RuntimeError(f"the manager still sees {node.name} as up")

    # -- tear-down ----------------------------------------------------------------------------
    def cleanup(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(docker.errors.APIError, docker.errors.NotFound):
                node.container.remove(force=True)
            with contextlib.suppress(docker.errors.APIError, docker.errors.NotFound):
                self.host.volumes.get(f"{node.name}-data").remove(force=True)
        if self.network is not None:
            with contextlib.suppress(docker.errors.APIError, docker.errors.NotFound):
                self.network.remove()
        if self.shared_dir is not None:
            shutil.rmtree(self.shared_dir, ignore_errors=True)
        self.host.close()


def ensure_node_image(client: Any) -> None:
    try:
        client.images.get(NODE_IMAGE)
    except docker.errors.ImageNotFound:
        client.images.build(path=str(NODE_DOCKERFILE_DIR), tag=NODE_IMAGE, rm=True)


def tar_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextlib.contextmanager
def running_cluster(size: int = 3, with_registry: bool = True) -> Iterator[Cluster]:
    cluster = Cluster(size=size, with_registry=with_registry)
    try:
        yield cluster.start()
    finally:
        cluster.cleanup()
