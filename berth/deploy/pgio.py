"""The hub's PostgreSQL database from the host: check it, dump it, load a dump, each in a
short-lived helper container of the hub image running :mod:`berth.deploy.pgtool`.

The helper must see the network the way the hub does (the database may be a container on the
hub's network, which the firewall lets only the hub's address reach), so it either shares the
running hub's network namespace, or, while the hub is stopped (a restore), takes the hub's own
static address on the service's network. The database URL goes in as a file (mode 600), never
on a command line or in an environment `docker inspect` shows.
"""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from berth.deploy import layout, pgtool, volumeio
from berth.deploy.containerplan import endpoint_config, files_tar
from berth.deploy.network import network_addresses
from berth.engine_kind import engine_kind
from berth.errors import BerthError
from berth.labels import LABEL_MANAGED, LABEL_ROLE
from berth.spawner.specs import NO_NEW_PRIVILEGES

SCRIPT = "/tmp/berth-pgtool.py"
URL_FILE = "/tmp/berth-db-url"
DUMP_FILE = "/tmp/berth-database.sql"
ROLE_HELPER = "database-helper"
HELPER_TIMEOUT = 3600
POSTGRES_PREFIX = "postgresql"
ERROR_PREFIX = pgtool.ERROR_PREFIX


def is_postgres(db_url: str) -> bool:
    return db_url.startswith(POSTGRES_PREFIX)


def dump_digest(lines: Iterator[bytes]) -> str:
    """The sha256 of a plain pg_dump without what differs between two dumps of the same data:
    comments (versions), blank lines and the random key of psql's \\restrict guard."""
    digest = hashlib.sha256()
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith((b"--", b"\\restrict", b"\\unrestrict")):
            continue
        digest.update(stripped + b"\n")
    return digest.hexdigest()


def placement(client: docker.DockerClient, network: str) -> dict[str, Any]:
    """Where a helper sees what the hub sees: in the running hub's network namespace, or at the
    hub's static address on the service's network while the hub is stopped."""
    try:
        hub = client.containers.get(layout.HUB_CONTAINER)
    except NotFound:
        hub = None
    if hub is not None and hub.status == "running":
        return {"network_mode": f"container:{hub.id}"}
    try:
        attrs = client.networks.get(network).attrs
    except NotFound:
        raise BerthError(
            f"the network {network} does not exist, so nothing can reach the hub database the "
            "way the hub does",
            hint="run `berth up` first",
        ) from None
    subnet = ((attrs.get("IPAM") or {}).get("Config") or [{}])[0].get("Subnet", "")
    try:
        hub_ip = network_addresses(subnet).hub
    except ValueError as exc:
        raise BerthError(f"the network {network} is not a Berth network: {exc}") from None
    # With the hub's MAC too (on Podman): the hub that starts after it finds the host's
    # neighbour entry for its address still right (containerplan.endpoint_config).
    return {
        "network": network,
        "networking_config": {network: endpoint_config(hub_ip, engine_kind(client))},
    }


@contextlib.contextmanager
def _helper(
    client: docker.DockerClient, image: str, db_url: str, network: str, command: list[str]
) -> Iterator[Container]:
    kwargs: dict[str, Any] = {
        "image": image,
        "name": f"berth-dbhelper-{uuid.uuid4().hex[:12]}",
        "entrypoint": ["python3", SCRIPT],
        "command": command,
        "user": f"{layout.HUB_UID}:{layout.HUB_GID}",
        "cap_drop": ["ALL"],
        "security_opt": [NO_NEW_PRIVILEGES],
        "mem_limit": "512m",
        "labels": {LABEL_MANAGED: "true", LABEL_ROLE: ROLE_HELPER},
        "detach": True,
        **placement(client, network),
    }
    try:
        container = client.containers.create(**kwargs)
    except APIError as exc:
        raise BerthError(f"cannot create the database helper: {exc.explanation or exc}") from exc
    try:
        files = {
            SCRIPT: (Path(pgtool.__file__).read_bytes(), 0o644),
            URL_FILE: (db_url.encode(), 0o600),
        }
        container.put_archive("/", files_tar(files))
        yield container
    finally:
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)


def _run(container: Container, what: str) -> None:
    container.start()
    result = container.wait(timeout=HELPER_TIMEOUT)
    if result.get("StatusCode") != 0:
        raise BerthError(last_error(container.logs(stdout=False, stderr=True), what))


def last_error(log: bytes, what: str) -> str:
    """The tool's one `berth: error:` line, or the end of its output."""
    text = log.decode(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith(pgtool.ERROR_PREFIX):
            return line.removeprefix(pgtool.ERROR_PREFIX)
    return f"{what} failed: {text.strip()[-800:] or 'no output'}"


def check(client: docker.DockerClient, image: str, db_url: str, network: str) -> None:
    """Raise BerthError with one plain sentence unless the hub could use the database."""
    with _helper(client, image, db_url, network, ["check", URL_FILE]) as helper:
        _run(helper, "the hub database check")


def check_before_replacing_hub(
    client: docker.DockerClient, image: str, db_url: str, network: str
) -> None:
    """Before `berth up` stops a running hub for a new one: the new one's database must be
    usable, or nothing is touched. (With no hub running there is nothing to keep, and the new
    hub's entry makes the same check: berth.deploy.hubinit.)"""
    if not is_postgres(db_url):
        return
    with contextlib.suppress(NotFound):
        if client.containers.get(layout.HUB_CONTAINER).status == "running":
            check(client, image, db_url, network)


@contextlib.contextmanager
def dumped(
    client: docker.DockerClient, image: str, db_url: str, network: str
) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """pg_dump of the hub database (one consistent snapshot), as a stream."""
    with _helper(client, image, db_url, network, ["dump", URL_FILE, DUMP_FILE]) as helper:
        _run(helper, "pg_dump of the hub database")
        chunks, _ = helper.get_archive(DUMP_FILE)
        reader = volumeio._ChunkReader(iter(chunks))
        with tarfile.open(fileobj=reader, mode="r|") as outer:
            member = outer.next()
            stream = outer.extractfile(member) if member else None
            if member is None or stream is None:
                raise BerthError("pg_dump produced no file")
            yield member, stream


def load(client: docker.DockerClient, image: str, db_url: str, network: str, dump: Path) -> str:
    """Replace the hub database's contents with `dump` (all or nothing); return the digest
    (:func:`dump_digest`) of a fresh dump of the result, to compare with the archive's."""
    with _helper(client, image, db_url, network, ["load", URL_FILE, DUMP_FILE]) as helper:
        helper.put_archive("/", files_tar({DUMP_FILE: (dump.read_bytes(), 0o600)}))
        _run(helper, "loading the hub database")
    with dumped(client, image, db_url, network) as (_, stream):
        return dump_digest(iter(stream.readline, b""))
