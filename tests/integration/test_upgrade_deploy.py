"""`berth up` after an upgrade that brings a newer JupyterHub, on a real deployment.

A deployment runs from the hub image as built (JupyterHub ``JUPYTERHUB_VERSION``, 5.5.4); alice
logs in, starts her server and writes a file into her volume. Then the hub image is built again
from the same source with the newest JupyterHub Berth supports (6.1.1, its four schema
migrations) as ``berth/hub:latest``: the upgraded Berth. `berth up` replaces the hub; its entry
backs the database up and migrates it (berth/deploy/dbupgrade.py); alice's server container is
the same one, still running, her file is there, and she logs in again (through
NativeAuthenticator's page, which needs berth/auth/nostatsd.py on JupyterHub 6) and reaches
JupyterLab. The hub image is built again as it was afterwards.

Run under the hub-image lock (COMMON.md): it replaces ``berth/hub:latest`` for a while.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from deployment import deployment
from hub_users import BrowserUser, add_user

from berth.images import catalog
from berth.images.builder import (
    BuildOptions,
    build_args,
    image_labels,
    make_context,
    parse_stream,
    read_ca_bundle,
)
from berth.versions import BERTH_VERSION, JUPYTERHUB_TESTED, JUPYTERHUB_VERSION

pytestmark = pytest.mark.integration

NEXT = JUPYTERHUB_TESTED[-1]
HUB = "berth-hub"
DATA = "/srv/berth/data"
REVISION = "import sqlite3; print(sqlite3.connect('{db}').execute('SELECT version_num FROM alembic_version').fetchone()[0])"  # noqa: E501


def build_hub(client: docker.DockerClient, jupyterhub: str) -> str:
    """berth/hub:latest from this source with `jupyterhub`; returns the image id."""
    image = catalog.get("hub")
    bundle = os.environ.get("BERTH_CA_BUNDLE")
    ca = read_ca_bundle(Path(bundle)) if bundle else None
    args = {**build_args(image, BuildOptions(names=["hub"])), "JUPYTERHUB_VERSION": jupyterhub}
    stream = client.api.build(
        fileobj=make_context(image, ca), custom_context=True, buildargs=args,
        labels=image_labels(image, BERTH_VERSION), rm=True, forcerm=True, decode=True,
    )  # fmt: skip
    image_id = [item for item in parse_stream(image.name, stream) if isinstance(item, str)][-1]
    client.api.tag(image_id, catalog.HUB_IMAGE.repository, "latest")
    return image_id


def in_hub(client: docker.DockerClient, *command: str) -> str:
    found = client.containers.get(HUB).exec_run(list(command))
    assert found.exit_code == 0, found.output
    return str(found.output.decode().strip())


BUILT: list[str] = []  # the upgraded hub images this module made (removed afterwards)


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        yield client
    finally:
        current = build_hub(client, JUPYTERHUB_VERSION)  # as it was (cached layers)
        for image_id in set(BUILT) - {current}:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image_id)
        client.close()


def test_berth_up_migrates_the_hub_database_and_keeps_servers(tmp_path: Path, engine):
    with deployment(tmp_path) as dep:
        alice = BrowserUser(dep, "alice", add_user(dep, "alice"))
        alice.login()
        alice.spawn()
        alice.wait_for_lab(timeout=300)
        mine = {"label": ["berth.user=alice"], "network": [dep.config["network"]]}
        (server,) = engine.containers.list(filters=mine)
        server.exec_run(["sh", "-c", "echo from-the-old-hub > /home/jovyan/work/kept.txt"])
        db = f"{DATA}/jupyterhub.sqlite"
        old_revision = in_hub(engine, "python3", "-c", REVISION.format(db=db))
        assert in_hub(engine, "python3", "-c", "import jupyterhub as j; print(j.__version__)") == (
            JUPYTERHUB_VERSION
        )

        BUILT.append(build_hub(engine, NEXT))
        upgraded = dep.up()
        # Every container of the hub image restarts; user servers keep running.
        restarted = [line for line in upgraded.stderr.splitlines() if line.startswith("restarting")]
        assert "berth-hub" in restarted[0], upgraded.stderr
        assert in_hub(engine, "python3", "-c", "import jupyterhub as j; print(j.__version__)") == (
            NEXT
        )
        log = engine.containers.get(HUB).logs().decode(errors="replace")
        assert f"migrated the hub database from schema {old_revision} to " in log, log[-3000:]
        (copy,) = in_hub(engine, "ls", f"{DATA}/db-backups").split()
        assert copy.startswith(f"jupyterhub-{old_revision}-")
        assert in_hub(engine, "stat", "-c", "%a", f"{DATA}/db-backups/{copy}") == "600"
        assert in_hub(engine, "python3", "-c", REVISION.format(db=db)) != old_revision

        server.reload()
        assert server.status == "running"  # the same container, never restarted
        kept = server.exec_run(["cat", "/home/jovyan/work/kept.txt"]).output.decode().strip()
        assert kept == "from-the-old-hub"
        again = BrowserUser(dep, "alice", alice.password)
        again.login()  # NativeAuthenticator's login page on JupyterHub 6
        again.wait_for_lab(timeout=120)
