"""`berth restore` against the engine: verify the whole archive, check the targets, and only
then change volumes, each verified again against the manifest (see :mod:`berth.deploy.backup`
for the archive's contents and :mod:`berth.deploy.archive` for its checks).

A user volume is restored into a new volume (an existing one is kept unless ``--replace``)
carrying the labels it had, so the spawner's ownership check accepts it for the same account.
The hub's data is restored with the hub stopped, then the hub is started again.
"""

from __future__ import annotations

import functools
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from berth import engine_client, names
from berth.config.schema import BerthConfig
from berth.deploy import archive, layout, pgio, volumeio
from berth.deploy.archive import ArchiveProblem, Entry
from berth.deploy.backup import SQLITE_SIDE_FILES, Say, identity, image_present
from berth.errors import BerthError
from berth.labels import LABEL_MANAGED, LABEL_ROLE, LABEL_USER, ROLE_HUB_DATA, ROLE_VOLUME

HUB_START_TIMEOUT = 120.0
HUB_KEY = ":hub"  # the splitter's key for the hub's data (":" is in no volume name)


class _Splitter:
    """During the one verifying read, writes each volume's members to a tar of its own
    (named under berth-volume/, ready for put_archive) and the database to a file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tars: dict[str, Path] = {}
        self.current: tuple[str, tarfile.TarFile] | None = None
        self.database: tuple[tarfile.TarInfo, Path] | None = None
        self.sql_dump: Path | None = None  # a PostgreSQL hub database

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
        if name == archive.HUB_DATABASE_SQL:
            self.sql_dump = self.workdir / "database.sql"
            with archive.open_private(self.sql_dump) as out:
                shutil.copyfileobj(content, out, archive.COPY_CHUNK)  # type: ignore[arg-type]
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


def plan_restore(manifest: archive.Manifest, users: list[str]) -> RestorePlan:
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
                f"the volume {name} is in use by {', '.join(str(c.name) for c in users)}; "
                "stop that server first (nothing was changed)"
            )
    plan.replace = existing


def _verify_volume(
    client: docker.DockerClient,
    image: str,
    volume: str,
    expected: dict[str, Entry],
    rename: Callable[[str], str],
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
    me = identity(client, image_present(client), cfg)
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
    image = image_present(client)
    me = identity(client, image, cfg)
    with tempfile.TemporaryDirectory(prefix="berth-restore-") as workdir:
        splitter = _Splitter(Path(workdir))
        try:
            verified = archive.verify(path, me.key, me.id, force_foreign, sink=splitter)
            splitter.close()
            plan = plan_restore(verified.manifest, users)
        except ArchiveProblem as exc:
            raise BerthError(f"{exc}\nnothing was changed") from None
        if cfg.hub.data_volume in plan.volumes:
            raise BerthError(
                f"the archive lists the hub's data volume {cfg.hub.data_volume} as a user's "
                "volume; refused, nothing was changed"
            )
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
                functools.partial(archive.member_name, root),
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
    hub_meta = verified.manifest.get("hub") or {}
    db_url = cfg.hub.db_url.get_secret_value()
    if "postgresql" in hub_meta or pgio.is_postgres(db_url):
        _restore_hub_postgres(client, cfg, image, verified, splitter, say)
        return
    db = str(hub_meta.get("database") or "")
    if archive.name_problem(f"{archive.HUB_DATA}/{db}") or splitter.database is None:
        raise BerthError("the archive's hub database entry is unusable; nothing was changed")
    volume = _ensure_hub_volume(client, cfg)
    hub_tar = splitter.tars.get(HUB_KEY)
    if hub_tar is None:
        raise BerthError("the archive has no hub data; nothing was changed")
    info, db_file = splitter.database
    with tarfile.open(hub_tar, "a", format=tarfile.PAX_FORMAT) as tar, open(db_file, "rb") as data:
        member = tarfile.TarInfo(f"{volumeio.MOUNT.lstrip('/')}/{db}")
        member.size, member.uid, member.gid = info.size, info.uid, info.gid
        member.mode, member.mtime = info.mode, info.mtime
        tar.addfile(member, data)
    hub = _stop_running_hub(client, say)
    _refill(client, image, volume, hub_tar, say)
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
        say("the hub was not running: start the service with `berth up`")
        return
    say("starting the hub again")
    hub.start()
    engine_client.wait_healthy(hub, "the hub", HUB_START_TIMEOUT, interval=0.5)


def _restore_hub_postgres(
    client: docker.DockerClient,
    cfg: BerthConfig,
    image: str,
    verified: archive.Verified,
    splitter: _Splitter,
    say: Say,
) -> None:
    """The hub's data volume, and the PostgreSQL database loaded from the archive's pg_dump
    (in one transaction: a failed load leaves the database as it was), with the hub stopped.
    The database is loaded first, so a refused load leaves the volume untouched too."""
    expected_digest = str(
        ((verified.manifest.get("hub") or {}).get("postgresql") or {}).get("dump_digest", "")
    )
    if splitter.sql_dump is None or not expected_digest:
        raise BerthError(
            "the archive holds a SQLite hub database but hub.db_url is PostgreSQL (or the "
            "other way round); nothing was changed",
            hint="restore into a deployment with the same kind of database",
        )
    if not pgio.is_postgres(cfg.hub.db_url.get_secret_value()):
        raise BerthError(
            "the archive holds a PostgreSQL hub database but hub.db_url is SQLite; nothing "
            "was changed",
            hint="set hub.db_url to the PostgreSQL database to restore into",
        )
    hub_tar = splitter.tars.get(HUB_KEY)
    if hub_tar is None:
        raise BerthError("the archive has no hub data; nothing was changed")
    db_url = cfg.hub.db_url.get_secret_value()
    say("checking the hub database is reachable (nothing changed yet)")
    pgio.check(client, image, db_url, cfg.network)
    volume = _ensure_hub_volume(client, cfg)
    hub = _stop_running_hub(client, say)
    try:
        say("loading the hub database (one transaction)")
        found = pgio.load(client, image, db_url, cfg.network, splitter.sql_dump)
        if found != expected_digest:
            raise BerthError(
                "the restored hub database does not match the archive's dump (a fresh "
                "pg_dump of it differs)"
            )
        _refill(client, image, volume, hub_tar, say)
        _verify_volume(
            client,
            image,
            volume,
            archive.entries_under(verified.entries, archive.HUB_DATA),
            lambda name: archive.member_name(archive.HUB_DATA, name),
            as_hub_user=True,
        )
    finally:
        if hub is not None:
            say("starting the hub again")
            hub.start()
    if hub is None:
        say("the hub was not running: start the service with `berth up`")
        return
    engine_client.wait_healthy(hub, "the hub", HUB_START_TIMEOUT, interval=0.5)


def _ensure_hub_volume(client: docker.DockerClient, cfg: BerthConfig) -> str:
    """The hub's data volume, made (with the labels `berth up` gives it) if missing."""
    volume = cfg.hub.data_volume
    try:
        client.volumes.get(volume)
    except NotFound:
        client.volumes.create(
            volume, driver="local", labels={LABEL_MANAGED: "true", LABEL_ROLE: ROLE_HUB_DATA}
        )
    return volume


def _stop_running_hub(client: docker.DockerClient, say: Say) -> Container | None:
    """Stop the hub if it runs; return it then (to be started again), else None."""
    hub = _hub_container(client)
    if hub is None or hub.status != "running":
        return None
    say("stopping the hub to restore its data (user servers keep running)")
    hub.stop(timeout=15)
    return hub


def _refill(client: docker.DockerClient, image: str, volume: str, tar: Path, say: Say) -> None:
    """Empty the hub's data volume, then put the archive's hub data in."""
    say(f"restoring the hub data volume {volume}")
    volumeio.wipe(client, image, volume)
    with open(tar, "rb") as tar_file:
        volumeio.put(client, image, volume, tar_file)


def _hub_container(client: docker.DockerClient) -> Container | None:
    try:
        return client.containers.get(layout.HUB_CONTAINER)
    except NotFound:
        return None
    except APIError as exc:
        raise BerthError(f"cannot inspect the hub container: {exc.explanation}") from exc
