"""`berth up` over a deployment whose hub database an older JupyterHub made: the upgrade story of
a Berth release that moves the hub image to a newer JupyterHub, on a real deployment, with the
hub database in SQLite (the default) and in a real PostgreSQL server (tests/postgres_server.py).

The hub image is first built from this source with the previous hub release (``PREVIOUS``, the
oldest of ``JUPYTERHUB_TESTED``: 5.5.4, what the hub image carried before) as
``berth/hub:latest``, and `berth up` deploys it: alice logs in, starts her server and writes a
file into her volume, bob is made, and an API token is made for the admin. Then the hub image is
built as this source builds it (``JUPYTERHUB_HUB_VERSION``, 6.1.1: four schema migrations) and
`berth up` is run again, as after an upgrade of Berth. The hub's entry backs the database up
(SQLite's online backup, or ``pg_dump``; mode 600 in ``db-backups/``) and migrates it
(berth/deploy/dbupgrade.py). After: the hub runs the new release; alice's server container is
the same one, still running, with her file; her browser session from before still reaches her
server; the token made before still answers; bob is there; alice logs in again through
NativeAuthenticator's page (which needs berth/auth/nostatsd.py on JupyterHub 6).

Run under the hub-image lock (COMMON.md): it replaces ``berth/hub:latest`` for a while, and
builds it again as this source builds it at the end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from deployment import Deployment, deployment
from hub_users import BrowserUser, add_user
from postgres_server import postgres_deployment, psql

from berth.engine_kind import engine_kind
from berth.images import catalog
from berth.images.builder import (
    BuildOptions,
    build_args,
    image_labels,
    make_context,
    parse_stream,
    read_ca_bundle,
    tag_image,
)
from berth.versions import BERTH_VERSION, JUPYTERHUB_HUB_VERSION, JUPYTERHUB_TESTED

pytestmark = pytest.mark.integration

PREVIOUS = JUPYTERHUB_TESTED[0]
HUB = "berth-hub"
DATA = "/srv/berth/data"
SQLITE_REVISION = "import sqlite3; print(sqlite3.connect('{db}').execute('SELECT version_num FROM alembic_version').fetchone()[0])"  # noqa: E501
VERSION = "import jupyterhub; print(jupyterhub.__version__)"


def build_hub(client: docker.DockerClient, jupyterhub: str) -> str:
    """berth/hub:latest from this source with `jupyterhub`; returns the image id."""
    image = catalog.HUB_IMAGE
    bundle = os.environ.get("BERTH_CA_BUNDLE")
    ca = read_ca_bundle(Path(bundle)) if bundle else None
    args = {**build_args(image, BuildOptions(names=["hub"])), "JUPYTERHUB_HUB_VERSION": jupyterhub}
    stream = client.api.build(
        fileobj=make_context(image, ca), custom_context=True, buildargs=args,
        labels=image_labels(image, BERTH_VERSION), rm=True, forcerm=True, decode=True,
    )  # fmt: skip
    image_id = [item for item in parse_stream(image.name, stream) if isinstance(item, str)][-1]
    # As `berth images build` tags it: on Podman also under localhost/, where the short name
    # berth/hub:latest resolves first (scripts/test.sh's loaded copy is there).
    tag_image(client, image_id, image.tag("latest"), engine_kind(client))
    return image_id


def in_hub(client: docker.DockerClient, *command: str) -> str:
    found = client.containers.get(HUB).exec_run(list(command))
    assert found.exit_code == 0, found.output
    return str(found.output.decode().strip())


BUILT: list[str] = []  # the previous-release hub images this module made (removed afterwards)


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        yield client
    finally:
        current = build_hub(client, JUPYTERHUB_HUB_VERSION)  # as this source builds it (cached)
        for image_id in set(BUILT) - {current}:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image_id)
        client.close()


@contextlib.contextmanager
def deployed(database: str, workdir: Path) -> Iterator[tuple[Deployment, object | None]]:
    """A fresh deployment of the hub image as tagged now; its PostgreSQL server, if any."""
    if database == "sqlite":
        with deployment(workdir) as dep:
            yield dep, None
    else:
        with postgres_deployment(workdir) as (dep, server):
            yield dep, server


def macs(engine: docker.DockerClient, network: str) -> dict[str, str]:
    """The hub's and the proxy's MAC addresses on the deployment's network."""
    found = {}
    for name in (HUB, "berth-proxy"):
        networks = engine.containers.get(name).attrs["NetworkSettings"]["Networks"]
        found[name] = networks[network]["MacAddress"]
    return found


def schema_revision(engine: docker.DockerClient, server: object | None) -> str:
    if server is None:
        database = f"{DATA}/jupyterhub.sqlite"
        return in_hub(engine, "python3", "-c", SQLITE_REVISION.format(db=database))
    return psql(server, "SELECT version_num FROM alembic_version").strip()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_berth_up_migrates_the_hub_database_and_keeps_servers(
    tmp_path: Path, engine: docker.DockerClient, database: str
) -> None:
    BUILT.append(build_hub(engine, PREVIOUS))  # the hub image as the previous Berth built it
    with deployed(database, tmp_path) as (dep, server):
        assert in_hub(engine, "python3", "-c", VERSION) == PREVIOUS
        alice = BrowserUser(dep, "alice", add_user(dep, "alice"))
        alice.login()
        alice.spawn()
        alice.wait_for_lab(timeout=300)
        mine = {"label": ["berth.user=alice"], "network": [dep.config["network"]]}
        (container,) = engine.containers.list(filters=mine)
        container.exec_run(["sh", "-c", "echo from-the-old-hub > /home/jovyan/work/kept.txt"])
        add_user(dep, "bob")
        token = dep.token("admin")  # an API token in the old database
        old_revision = schema_revision(engine, server)
        before = macs(engine, dep.config["network"])

        build_hub(engine, JUPYTERHUB_HUB_VERSION)  # the upgraded Berth's hub image
        upgraded = dep.up()
        # Every container of the hub image restarts; user servers keep running.
        restarted = [line for line in upgraded.stderr.splitlines() if line.startswith("restarting")]
        assert restarted and "berth-hub" in restarted[0], upgraded.stderr
        assert in_hub(engine, "python3", "-c", VERSION) == JUPYTERHUB_HUB_VERSION
        # The new hub and proxy have their predecessors' MACs as well as their addresses: with
        # a new MAC (netavark's random one on Podman) the host's neighbour entry sent the
        # published port's traffic to the old proxy's MAC for up to a minute (docs/podman.md).
        assert macs(engine, dep.config["network"]) == before
        log = engine.containers.get(HUB).logs().decode(errors="replace")
        assert f"migrated the hub database from schema {old_revision} to " in log, log[-3000:]
        new_revision = schema_revision(engine, server)
        assert new_revision != old_revision

        # The copy from before: named after the old schema, mode 600, holding the old data.
        (copy,) = in_hub(engine, "ls", f"{DATA}/db-backups").split()
        suffix = ".sqlite" if server is None else ".sql"
        assert copy.startswith(f"jupyterhub-{old_revision}-") and copy.endswith(suffix), copy
        path = f"{DATA}/db-backups/{copy}"
        assert in_hub(engine, "stat", "-c", "%a", path) == "600"
        if server is None:
            assert in_hub(engine, "python3", "-c", SQLITE_REVISION.format(db=path)) == old_revision
        else:
            dump = in_hub(engine, "cat", path)
            assert "COPY public.users " in dump and "\talice\t" in dump and "\tbob\t" in dump
            stamped = f"COPY public.alembic_version (version_num) FROM stdin;\n{old_revision}\n"
            assert stamped in dump

        container.reload()
        assert container.status == "running"  # the same container, never restarted
        kept = container.exec_run(["cat", "/home/jovyan/work/kept.txt"]).output.decode().strip()
        assert kept == "from-the-old-hub"
        assert dep.tokens["admin"] == token
        # The new hub answers once init_spawners_timeout (10 s) has passed even if its check of
        # alice's server has not ended; it reports the server pending until then.
        dep.wait_ready("alice", timeout=120)
        users = {user["name"]: user for user in dep.api("GET", "/hub/api/users").json()}
        assert {"admin", "alice", "bob"} <= set(users), users
        assert users["alice"]["servers"][""]["ready"], users["alice"]
        alice.wait_for_lab(timeout=120)  # her browser session from before the upgrade
        again = BrowserUser(dep, "alice", alice.password)
        again.login()  # NativeAuthenticator's login page on the new JupyterHub
        again.wait_for_lab(timeout=120)

        # A second `berth up` changes nothing: the migration ran once.
        same = dep.up()
        assert "nothing changed" in same.stderr, same.stderr
        assert len(in_hub(engine, "ls", f"{DATA}/db-backups").split()) == 1
