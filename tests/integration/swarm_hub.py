"""A JupyterHub with the Swarm spawner, running *inside* a test Swarm (tests/swarm_cluster.py).

The hub (berth/hub with this worktree's ``berth`` package first on its path) is a container on
the manager node, attached to the attachable overlay the users' servers are on; the test talks to
its proxy through the port the manager node publishes on the test bridge. The REST helpers are
:class:`hub_harness.Hub`'s.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import requests
from hub_harness import Hub
from swarm_cluster import OVERLAY, Cluster

HUB_NAME = "berth-swarm-hub"


class SwarmHub(Hub):
    def __init__(self, cluster: Cluster, image: str, spawner_config: str = "") -> None:
        super().__init__(
            Path("/nonexistent"),
            spawner_config,
            spawner="berth.spawner.swarm.SwarmSpawner",
            image=image,
        )
        self.cluster = cluster

    def start(self) -> SwarmHub:
        self.url = self.cluster.start_hub(self._config(), name=HUB_NAME)
        return self

    def restart_hub(self) -> None:
        """Restart the hub's container (hub and proxy; the database is kept in it)."""
        self.cluster.manager.client.containers.get(HUB_NAME).restart(timeout=30)
        self.wait_answering(120)

    def cleanup(self) -> None:
        self.http.close()  # the hub, its services and volumes go with the cluster's nodes

    def log_tail(self, lines: int = 60) -> str:
        return self.cluster.hub_logs(HUB_NAME, lines)

    def service(self, user: str, server: str = "") -> Any:
        found = self.cluster.manager.client.services.list(
            filters={"label": [f"berth.user={user}", f"berth.server={server}"]}
        )
        # The Swarm's filter takes "berth.server=" (the default server) for "has the label":
        # a user's named servers would match too.
        found = [s for s in found if s.attrs["Spec"]["Labels"].get("berth.server") == server]
        assert len(found) == 1, [s.name for s in found]
        return found[0]

    def server_node(self, user: str, server: str = "") -> str:
        """The hostname of the node the user's server runs on."""
        tasks = [t for t in self.service(user, server).tasks() if t["Status"]["State"] == "running"]
        assert len(tasks) == 1, tasks
        node = self.cluster.manager.client.nodes.get(tasks[0]["NodeID"])
        return str(node.attrs["Description"]["Hostname"])

    def state(self, user: str, server: str = "") -> dict[str, Any]:
        model = self.user_model(user)
        return dict(((model.get("servers") or {}).get(server) or {}).get("state") or {})

    def progress(self, user: str, server: str = "", timeout: float = 180) -> list[dict]:
        """The spawn's whole progress event stream (server-sent events), until it ends."""
        import json

        u = requests.utils.quote(user, safe="")
        path = f"/users/{u}/servers/{server}/progress" if server else f"/users/{u}/server/progress"
        events = []
        with self.api("GET", path, stream=True, timeout=timeout) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    events.append(json.loads(line[5:]))
        return events

    API_SCOPES = (*Hub.API_SCOPES, "admin:server_state", "proxy")

    def _where_config(self) -> str:
        """A container on the manager node: every interface, files in /tmp, its own proxy."""
        return textwrap.dedent(f"""
            c = get_config()  # noqa
            c.JupyterHub.ip = "0.0.0.0"
            c.JupyterHub.port = 8000
            c.JupyterHub.hub_ip = "0.0.0.0"
            c.JupyterHub.hub_connect_ip = {HUB_NAME!r}
            c.JupyterHub.db_url = "sqlite:////tmp/jupyterhub.sqlite"
            c.JupyterHub.cookie_secret_file = "/tmp/jupyterhub_cookie_secret"
            # Answer spawn requests at once (202): the tests follow the progress stream.
            c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
            c.Spawner.start_timeout = 180
        """)

    def _config(self) -> str:
        return (
            self._where_config()
            + self._common_config()
            + textwrap.dedent(f"""
            c.SwarmSpawner.docker_url = "unix:///var/run/docker.sock"
            c.SwarmSpawner.network_name = {OVERLAY!r}
            c.SwarmSpawner.image = {self.image!r}
            c.SwarmSpawner.prefix = "berth"
        """)
            + textwrap.dedent(self.spawner_config)
        )
