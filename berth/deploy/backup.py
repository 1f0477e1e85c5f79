"""`berth backup` against the engine: which volumes, and the archive written from them (the
format is :mod:`berth.deploy.archive`; moving bytes out of volumes is :mod:`berth.deploy.volumeio`;
the way back is :mod:`berth.deploy.restore`).

Nothing is stopped: the hub database comes from SQLite's online backup (for PostgreSQL, from
pg_dump, one consistent snapshot, run on the hub's network: :mod:`berth.deploy.pgio`), the rest
of the hub's data volume and each user volume are packed by a helper, so that the archive's
every checksum is of bytes that are in it. User volumes are chosen by their labels (Berth's,
role ``volume``, the deployment's spawner prefix), and a volume counts as this deployment's
only if its name is the one ``storage.volume_name_template`` gives for the user and server its
labels name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import docker
from docker.errors import NotFound

from berth import names
from berth.config.schema import BerthConfig
from berth.deploy import archive, inventory, pgio, volumeio
from berth.deploy.layout import SPAWNER_PREFIX
from berth.errors import BerthError
from berth.hub_container import DATA_DIR
from berth.images import catalog
from berth.labels import LABEL_SERVER, LABEL_USER

COOKIE_SECRET = "secrets/cookie_secret"  # in the data volume (berth.deploy.hubinit makes it)
SQLITE_SIDE_FILES = ("", "-journal", "-wal", "-shm")
Say = Callable[[str], None]


@dataclass(frozen=True)
class UserVolume:
    name: str
    user: str
    labels: dict[str, str]


def hub_image() -> str:
    return catalog.HUB_IMAGE.tag("latest")


def image_present(client: docker.DockerClient) -> str:
    image = hub_image()
    try:
        client.images.get(image)
    except NotFound:
        raise BerthError(f"{image} is missing", hint="run `berth up` (it builds it)") from None
    return image


def database_path(cfg: BerthConfig) -> str:
    """The SQLite file, relative to the data volume."""
    url = cfg.hub.db_url.get_secret_value()
    if pgio.is_postgres(url):
        raise BerthError("the hub database is PostgreSQL, not a file in the data volume")
    path = PurePosixPath(url.split("://", 1)[1][1:].split("?", 1)[0])
    return str(path.relative_to(DATA_DIR))


def user_volumes(client: docker.DockerClient, cfg: BerthConfig) -> list[UserVolume]:
    """This deployment's user volumes: found by label, confirmed by the name template."""
    found = []
    for volume in inventory.user_volumes(client):
        labels = dict(volume.attrs.get("Labels") or {})
        user, server = labels.get(LABEL_USER, ""), labels.get(LABEL_SERVER, "")
        if not user:
            continue
        namespace = names.template_namespace(SPAWNER_PREFIX, user, server)
        with contextlib.suppress(names.InvalidNameError):
            if names.render(cfg.storage.volume_name_template, namespace) == volume.name:
                found.append(UserVolume(volume.name, user, labels))
    return sorted(found, key=lambda v: v.name)


@dataclass(frozen=True)
class Identity:
    id: str | None
    key: bytes | None


def identity(client: docker.DockerClient, image: str, cfg: BerthConfig) -> Identity:
    """This deployment's id and HMAC key, from the cookie secret in its data volume."""
    try:
        client.volumes.get(cfg.hub.data_volume)
    except NotFound:
        return Identity(None, None)
    secret = volumeio.read_secret(client, image, cfg.hub.data_volume, COOKIE_SECRET).strip()
    if not secret:
        return Identity(None, None)
    return Identity(archive.deployment_id(secret), archive.mac_key(secret))


# -- backup ---------------------------------------------------------------------------------


def _copy_volume(
    writer: archive.ArchiveWriter, packed: tarfile.TarFile, rename: Callable[[str], str]
) -> None:
    for info in packed:
        stream = packed.extractfile(info) if info.isfile() else None
        writer.add(rename(info.name), info, stream)


def backup(
    client: docker.DockerClient,
    cfg: BerthConfig,
    users: list[str],
    everything: bool,
    directory: Path,
    say: Say,
) -> Path:
    """Write one archive into `directory`; return its path. Nothing is stopped."""
    image = image_present(client)
    me = identity(client, image, cfg)
    if me.id is None or me.key is None:
        raise BerthError(
            f"no deployment to back up: the volume {cfg.hub.data_volume} has no cookie secret",
            hint="start the service once with `berth up`",
        )
    volumes = user_volumes(client, cfg)
    if not everything:
        missing = sorted(set(users) - {v.user for v in volumes})
        if missing:
            raise BerthError(f"no volume of this deployment for: {', '.join(missing)}")
        volumes = [v for v in volumes if v.user in users]
    db_url = cfg.hub.db_url.get_secret_value()
    postgres = everything and pgio.is_postgres(db_url)
    db = database_path(cfg) if everything and not postgres else None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = directory / archive.archive_name()
    partial = directory / f".{final.name}.partial"
    writer = archive.ArchiveWriter(partial)
    try:
        hub_meta: dict[str, Any] | None = None
        if postgres:
            say("hub database (pg_dump)")
            hub_meta = {"postgresql": {"dump_digest": _add_dump(writer, client, image, cfg)}}
        elif db is not None:
            say("hub database (online backup)")
            with volumeio.sqlite_copy(client, image, cfg.hub.data_volume, db) as (info, stream):
                writer.add(archive.HUB_DATABASE, info, stream)
            hub_meta = {"database": db}
        if everything:
            say(f"hub data volume {cfg.hub.data_volume}")
            exclude = [db + suffix for suffix in SQLITE_SIDE_FILES] if db is not None else []
            with volumeio.packed(
                client, image, cfg.hub.data_volume, exclude, as_hub_user=True
            ) as packed:
                _copy_volume(writer, packed, lambda n: archive.member_name(archive.HUB_DATA, n))
        for volume in volumes:
            say(f"volume {volume.name} ({volume.user})")
            root = archive.volume_root(volume.name)
            with volumeio.packed(client, image, volume.name) as packed:
                _copy_volume(writer, packed, functools.partial(archive.member_name, root))
        meta = {
            "berth_version": _version(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "deployment": {
                "id": me.id,
                "data_volume": cfg.hub.data_volume,
                "network": cfg.network,
            },
            "hub": hub_meta,
            "volumes": {v.name: {"user": v.user, "labels": v.labels} for v in volumes},
        }
        writer.finish(meta, me.key)
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    partial.rename(final)
    return final


def _add_dump(
    writer: archive.ArchiveWriter, client: docker.DockerClient, image: str, cfg: BerthConfig
) -> str:
    """Add pg_dump's SQL to the archive; return its digest without the parts that differ
    between two dumps of the same data (the restore compares a dump of what it loaded)."""
    db_url = cfg.hub.db_url.get_secret_value()
    with pgio.dumped(client, image, db_url, cfg.network) as (info, stream):
        data = stream.read()  # a hub database is small; it is read once, whole
    info.size = len(data)
    writer.add(archive.HUB_DATABASE_SQL, info, io.BytesIO(data))
    return pgio.dump_digest(iter(data.splitlines()))


def _version() -> str:
    from berth.versions import BERTH_VERSION

    return BERTH_VERSION


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete the oldest archives in `directory` beyond the newest `keep`."""
    removed = archive.to_prune(archive.archives_in(directory), keep)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
