"""A real PostgreSQL server (Debian's `postgresql` package, built here from
tests/postgres_server/Dockerfile) on a test deployment's own network, for the hub database.

The network is created first, exactly as `berth up` would create it (berth up then keeps it),
so the server is there when the hub starts; only the hub's address may reach it (the firewall
trusts the hub; user servers are dropped). Nothing is published on the host.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from deployment import Deployment, base_config, exclusive_hub, free_port, reported, teardown

from berth.deploy.network import allocate_subnet, bridge_name, network_create_kwargs

IMAGE = "berth-ops-postgres:15"
CONTAINER = "berth-ops-postgres"
DOCKERFILE_DIR = Path(__file__).parent / "postgres_server"
ROLE, DATABASE = "hub", "jupyterhub"


def ensure_image(client: docker.DockerClient) -> None:
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.images.build(path=str(DOCKERFILE_DIR), tag=IMAGE, rm=True)


def psql(server, sql: str, database: str = DATABASE) -> str:
    """SQL as the server's superuser, over its local socket (inside the container)."""
    command = ["psql", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql]
    result = server.exec_run(command)
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode()


def wait_ready(server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.exec_run(["pg_isready", "-q"]).exit_code == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"PostgreSQL did not start: {server.logs(tail=20).decode()}")


def start_server(client: docker.DockerClient, network: str) -> tuple[object, str]:
    """The server on `network`, with a role and database for the hub; returns it and a URL."""
    for old in client.containers.list(all=True, filters={"name": CONTAINER}):
        if old.name == CONTAINER:
            old.remove(force=True)
    server = client.containers.run(
        IMAGE, name=CONTAINER, network=network, detach=True, labels={"berth-ops.test": "pg"}
    )
    wait_ready(server)
    password = secrets.token_hex(12)
    psql(server, f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'", "postgres")
    psql(server, f"CREATE DATABASE {DATABASE} OWNER {ROLE}", "postgres")
    return server, f"postgresql://{ROLE}:{password}@{CONTAINER}:5432/{DATABASE}"


@contextmanager
def postgres_deployment(workdir: Path) -> Iterator[tuple[Deployment, object]]:
    """A fresh deployment whose hub database is a real PostgreSQL server on its network."""
    os.makedirs(workdir, exist_ok=True)
    client = docker.from_env()
    ensure_image(client)
    with exclusive_hub():
        teardown(workdir)
        port = free_port()
        config = base_config(port)
        network = config["network"]
        subnet = allocate_subnet(client, f"{network}-subnet-probe")
        client.networks.create(**network_create_kwargs(network, bridge_name(network), subnet))
        server = None
        try:
            server, url = start_server(client, network)
            config["hub"]["db_url"] = url
            dep = Deployment(workdir, port, config)
            dep.write_config()
            dep.up()
            with reported(dep):
                yield dep, server
        finally:
            if server is not None:
                server.remove(force=True)
            teardown(workdir)
            client.close()
