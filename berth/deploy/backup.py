"""`berth backup` and `berth restore` against the engine: which volumes, in which order, and
the checks around every change. The archive format is :mod:`berth.deploy.archive`; moving
bytes in and out of volumes is :mod:`berth.deploy.volumeio`.

Backup, while the service runs: the hub database through SQLite's online backup, the rest of
the hub's data volume, and each user volume, each packed by a helper so that the archive's
every checksum is of bytes that are in it. User volumes are chosen by their labels (Berth's,
role ``volume``, the deployment's spawner prefix), and a volume counts as this deployment's
only if its name is the one ``storage.volume_name_template`` gives for the user and server its
labels name.

Restore: the whole archive is read and checked first (checksums, the manifest's HMAC with this
deployment's key, the deployment it came from); only then is anything changed. A user volume is
restored into a new volume (an existing one is kept unless ``--replace``) carrying the labels it
had, so the spawner's ownership check accepts it for the same account. The hub's data is
restored with the hub stopped, then the hub is started again. Each restored volume is packed
again and compared with the manifest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import docker
from docker.errors import APIError, NotFound

from berth import engine, names
from berth.config.schema import HUB_DATA_DIR, BerthConfig
from berth.deploy import archive, layout, volumeio
from berth.deploy.archive import ArchiveProblem, Entry
from berth.errors import BerthError
from berth.images import stack
from berth.spawner.specs import (
    LABEL_MANAGED,
    LABEL_PREFIX,
    LABEL_ROLE,
    LABEL_SERVER,
    LABEL_USER,
    ROLE_HUB_DATA,
    ROLE_VOLUME,
)

SPAWNER_PREFIX = "berth"  # ContainerSpawner.prefix, which berth.yaml leaves at its default
COOKIE_SECRET = "secrets/cookie_secret"  # in the data volume (berth.deploy.hubinit makes it)
SQLITE_SIDE_FILES = ("", "-journal", "-wal", "-shm")
HUB_START_TIMEOUT = 120.0
HUB_KEY = ":hub"  # the splitter's key for the hub's data (":" is in no volume name)
Say = Callable[[str], None]


@dataclass(frozen=True)
class UserVolume:
    name: str
    user: str
    labels: dict[str, str]


def hub_image() -> str:
    return stack.HUB_IMAGE.tag("latest")


def _image(client: docker.DockerClient) -> str:
    image = hub_image()
    try:
        client.images.get(image)
    except NotFound:
        raise BerthError(f"{image} is missing", hint="run `berth up` (it builds it)") from None
    return image


def database_path(cfg: BerthConfig) -> str:
    """The SQLite file, relative to the data volume; PostgreSQL is not backed up (yet)."""
    url = cfg.hub.db_url.get_secret_value()
    if not url.startswith("sqlite:"):
        raise BerthError(
            "the hub database is PostgreSQL: `berth backup` backs up SQLite only for now",
            hint="back the database up with pg_dump; --users backs up user volumes alone",
        )
    path = PurePosixPath(url.split("://", 1)[1][1:].split("?", 1)[0])
    return str(path.relative_to(HUB_DATA_DIR))


def user_volumes(client: docker.DockerClient, cfg: BerthConfig) -> list[UserVolume]:
    """This deployment's user volumes: found by label, confirmed by the name template."""
    filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_ROLE}={ROLE_VOLUME}"]}
    found = []
    for volume in client.volumes.list(filters=filters):
        labels = dict(volume.attrs.get("Labels") or {})
        user, server = labels.get(LABEL_USER, ""), labels.get(LABEL_SERVER, "")
        if not user or labels.get(LABEL_PREFIX) != SPAWNER_PREFIX:
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


def _copy_volume(writer: archive.ArchiveWriter, packed: tarfile.TarFile, rename) -> None:
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
    image = _image(client)
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
    db = database_path(cfg) if everything else None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = directory / archive.archive_name()
    partial = directory / f".{final.name}.partial"
    writer = archive.ArchiveWriter(partial)
    try:
        if db is not None:
            say("hub database (online backup)")
            with volumeio.sqlite_copy(client, image, cfg.hub.data_volume, db) as (info, stream):
                writer.add(archive.HUB_DATABASE, info, stream)
            say(f"hub data volume {cfg.hub.data_volume}")
            exclude = [db + suffix for suffix in SQLITE_SIDE_FILES]
            with volumeio.packed(
                client, image, cfg.hub.data_volume, exclude, as_hub_user=True
            ) as packed:
                _copy_volume(writer, packed, lambda n: archive.member_name(archive.HUB_DATA, n))
        for volume in volumes:
            say(f"volume {volume.name} ({volume.user})")
            root = archive.volume_root(volume.name)
            with volumeio.packed(client, image, volume.name) as packed:
                _copy_volume(writer, packed, lambda n, root=root: archive.member_name(root, n))
        meta = {
            "berth_version": _version(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "deployment": {
                "id": me.id,
                "data_volume": cfg.hub.data_volume,
                "network": cfg.network,
            },
            "hub": {"database": db} if db is not None else None,
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


def _version() -> str:
    from berth.versions import BERTH_VERSION

    return BERTH_VERSION


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete the oldest archives in `directory` beyond the newest `keep`."""
    removed = archive.to_prune(archive.archives_in(directory), keep)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


# -- restore --------------------------------------------------------------------------------


class _Splitter:
    """During the one verifying read, writes each volume's members to a tar of its own
    (named under berth-volume/, ready for put_archive) and the database to a file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tars: dict[str, Path] = {}
        self.current: tuple[str, tarfile.TarFile] | None = None
        self.database: tuple[tarfile.TarInfo, Path] | None = None

    def _target(self, name: str) -> tuple[str, str]:
        parts = PurePosixPath(name).parts
        if parts[0] == "hub":
            return HUB_KEY, "/".join(parts[2:])
        return parts[1], "/".join(parts[2:])

    def __call__(self, name: str, info: tarfile.TarInfo, content: IO[bytes] | None) -> None:
        if name == archive.HUB_DATABASE:
            path = self.workdir / "database.sqlite"
            with archive.open_private(path) as out:
                shutil.copyfileobj(content, out, archive.COPY_CHUNK)  # type: ignore[arg-type]
            self.database = (info, path)
            return
        key, relative = self._target(name)
        if self.current is None or self.current[0] != key:
            self.close()
            path = self.workdir / f"{len(self.tars)}.tar"
            if key in self.tars:
                raise ArchiveProblem(f"the members of {key} are not together")
            self.tars[key] = path
            tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
            self.current = (key, tar)  # closed when the next volume starts, or by close()
        copy = tarfile.TarInfo(volumeio.MOUNT.lstrip("/") + (f"/{relative}" if relative else ""))
        copy.type, copy.linkname, copy.size = info.type, info.linkname, info.size
        copy.uid, copy.gid, copy.mode, copy.mtime = info.uid, info.gid, info.mode, info.mtime
        self.current[1].addfile(copy, content)

    def close(self) -> None:
        if self.current is not None:
            self.current[1].close()
            self.current = None


@dataclass
class RestorePlan:
    hub: bool
    volumes: dict[str, dict[str, Any]]  # name -> {"user", "labels"}
    replace: list[str] = field(default_factory=list)  # existing volumes to replace


def plan_restore(manifest: dict[str, Any], users: list[str]) -> RestorePlan:
    """What to restore from a verified manifest: everything, or the named users' volumes."""
    listed = manifest.get("volumes") or {}
    for name, info in listed.items():
        labels = info.get("labels") or {}
        names.check_docker_name(name, "volume")
        if labels.get(LABEL_ROLE) != ROLE_VOLUME or labels.get(LABEL_USER) != info.get("user"):
            raise ArchiveProblem(f"the manifest's labels of {name} are not a user volume's")
    if not users:
        return RestorePlan(hub=bool(manifest.get("hub")), volumes=dict(listed))
    chosen = {n: i for n, i in listed.items() if i.get("user") in users}
    missing = sorted(set(users) - {i.get("user") for i in chosen.values()})
    if missing:
        raise BerthError(f"the archive has no volume for: {', '.join(missing)}")
    return RestorePlan(hub=False, volumes=chosen)


def _check_targets(client: docker.DockerClient, plan: RestorePlan, replace: bool) -> None:
    """Refuse, before any change, volumes that exist (without --replace) or are in use."""
    existing = []
    for name in plan.volumes:
        try:
            client.volumes.get(name)
        except NotFound:
            continue
        existing.append(name)
    if existing and not replace:
        raise BerthError(
            f"these volumes exist already: {', '.join(existing)}; nothing was changed",
            hint="pass --replace to replace them with the archive's (their files are lost)",
        )
    for name in existing:
        users = client.containers.list(all=True, filters={"volume": name})
        if users:
            raise BerthError(
                f"the volume {name} is in use by {', '.join(c.name for c in users)}; stop that "
                "server first (nothing was changed)"
            )
    plan.replace = existing


def _verify_volume(
    client: docker.DockerClient,
    image: str,
    volume: str,
    expected: dict[str, Entry],
    rename,
    exclude: list[str] | None = None,
    as_hub_user: bool = False,
) -> None:
    found: dict[str, Entry] = {}
    with volumeio.packed(client, image, volume, exclude, as_hub_user) as packed:
        for info in packed:
            digest = ""
            if info.isfile():
                hashing = archive._Hashing(packed.extractfile(info))  # type: ignore[arg-type]
                hashing.drain()
                digest = hashing.digest.hexdigest()
            found[rename(info.name)] = archive.entry_for(info, digest)
    problems = archive.compare(expected, found, what=" after restoring")
    if problems:
        raise BerthError(
            f"the restored volume {volume} does not match the manifest:\n  "
            + "\n  ".join(problems[:20])
        )


def verify_only(
    client: docker.DockerClient, cfg: BerthConfig, path: Path, force_foreign: bool
) -> archive.Verified:
    me = identity(client, _image(client), cfg)
    try:
        return archive.verify(path, me.key, me.id, force_foreign)
    except ArchiveProblem as exc:
        raise BerthError(str(exc)) from None


def restore(
    client: docker.DockerClient,
    cfg: BerthConfig,
    path: Path,
    users: list[str],
    force_foreign: bool,
    replace: bool,
    say: Say,
) -> RestorePlan:
    image = _image(client)
    me = identity(client, image, cfg)
    with tempfile.TemporaryDirectory(prefix="berth-restore-") as workdir:
        splitter = _Splitter(Path(workdir))
        try:
            verified = archive.verify(path, me.key, me.id, force_foreign, sink=splitter)
            splitter.close()
            plan = plan_restore(verified.manifest, users)
        except ArchiveProblem as exc:
            raise BerthError(f"{exc}\nnothing was changed") from None
        if not verified.authenticated:
            say("[yellow]note:[/] a foreign archive: only its own checksums were checked")
        _check_targets(client, plan, replace)
        if plan.hub:
            _restore_hub(client, cfg, image, verified, splitter, say)
        for name, info in plan.volumes.items():
            say(f"restoring {name} ({info['user']})")
            if name in plan.replace:
                client.volumes.get(name).remove()
            client.volumes.create(name, driver="local", labels=info["labels"])
            root = archive.volume_root(name)
            with open(splitter.tars[name], "rb") as tar_file:
                volumeio.put(client, image, name, tar_file)
            _verify_volume(
                client,
                image,
                name,
                archive.entries_under(verified.entries, root),
                lambda n, root=root: archive.member_name(root, n),
            )
    return plan


def _restore_hub(
    client: docker.DockerClient,
    cfg: BerthConfig,
    image: str,
    verified: archive.Verified,
    splitter: _Splitter,
    say: Say,
) -> None:
    db = str((verified.manifest.get("hub") or {}).get("database") or "")
    if archive.name_problem(f"{archive.HUB_DATA}/{db}") or splitter.database is None:
        raise BerthError("the archive's hub database entry is unusable; nothing was changed")
    volume = cfg.hub.data_volume
    try:
        client.volumes.get(volume)
    except NotFound:
        client.volumes.create(
            volume, driver="local", labels={LABEL_MANAGED: "true", LABEL_ROLE: ROLE_HUB_DATA}
        )
    hub_tar = splitter.tars.get(HUB_KEY)
    if hub_tar is None:
        raise BerthError("the archive has no hub data; nothing was changed")
    info, db_file = splitter.database
    with tarfile.open(hub_tar, "a", format=tarfile.PAX_FORMAT) as tar, open(db_file, "rb") as data:
        member = tarfile.TarInfo(f"{volumeio.MOUNT.lstrip('/')}/{db}")
        member.size, member.uid, member.gid = info.size, info.uid, info.gid
        member.mode, member.mtime = info.mode, info.mtime
        tar.addfile(member, data)
    hub = _hub_container(client)
    if hub is not None and hub.status == "running":
        say("stopping the hub to restore its data (user servers keep running)")
        hub.stop(timeout=15)
    say(f"restoring the hub data volume {volume}")
    volumeio.wipe(client, image, volume)
    with open(hub_tar, "rb") as tar_file:
        volumeio.put(client, image, volume, tar_file)
    expected = {
        **archive.entries_under(verified.entries, archive.HUB_DATA),
        archive.HUB_DATABASE: verified.entries[archive.HUB_DATABASE],
    }

    def rename(name: str) -> str:
        relative = name.removeprefix("./")
        if relative == db:
            return archive.HUB_DATABASE
        return archive.member_name(archive.HUB_DATA, name)

    side_files = [db + suffix for suffix in SQLITE_SIDE_FILES[1:]]
    _verify_volume(client, image, volume, expected, rename, side_files, as_hub_user=True)
    if hub is None:
        say("the hub container does not exist: start the service with `berth up`")
        return
    say("starting the hub again")
    hub.start()
    engine.wait_healthy(hub, "the hub", HUB_START_TIMEOUT, interval=0.5)


def _hub_container(client: docker.DockerClient):
    try:
        return client.containers.get(layout.HUB_CONTAINER)
    except NotFound:
        return None
    except APIError as exc:
        raise BerthError(f"cannot inspect the hub container: {exc.explanation}") from exc
