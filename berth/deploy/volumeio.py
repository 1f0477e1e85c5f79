"""Reading and writing volume contents through short-lived helper containers.

Every helper runs the hub image (present wherever `berth up` ran) with no network, no
capabilities beyond the one it needs, ``no-new-privileges`` and a memory limit, and is removed
afterwards. Contents cross the engine's archive API (``get_archive``/``put_archive``), never a
host path or the docker CLI:

* packing a volume: the helper runs :mod:`berth.deploy.volumetar` (copied into it, so any hub
  image with Python serves) over the volume, mounted
  read-only, into a tar in its own layer; the host then streams that finished tar out. User
  volumes are packed as root with ``CAP_DAC_OVERRIDE`` only, on a read-only mount (files of
  any owner can be read, nothing written); the hub's data volume as the hub's own unprivileged user;
* writing a volume: a helper that mounts it and is running (it only sleeps) receives the tar
  through ``put_archive``; the engine writes the tar's numeric owners and modes as they are.
  Running, because Podman 4.3 mounts a container's volumes only while it runs: an archive put
  into a created container lands in its own layer, under the mount, and never reaches the
  volume (Docker writes it through the mount either way; see :mod:`berth.deploy.volume_files`,
  which does the same for a container's files below its volume mounts);
* emptying the hub's data volume (before its restore): the hub's user, no capabilities.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from berth.deploy import volumetar
from berth.errors import BerthError
from berth.hub_container import HUB_GID, HUB_UID
from berth.labels import LABEL_MANAGED, LABEL_ROLE
from berth.spawner.specs import NO_NEW_PRIVILEGES

MOUNT = "/berth-volume"  # not a directory of the image: nothing is copied into a new volume
OUT_DIR = "/tmp/berth-pack"
ROLE_HELPER = "backup-helper"
HELPER_TIMEOUT = 3600
# How long the writing helper sleeps: long enough for one upload; it is removed (killed) after.
PUT_SECONDS = 3600
SCRIPT = "/tmp/berth-volumetar.py"  # berth/deploy/volumetar.py, copied in before the start
HUB_USER = f"{HUB_UID}:{HUB_GID}"  # the hub image's user


class _ChunkReader(io.RawIOBase):
    """A file object over the engine's stream of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            try:
                self.pending = next(self.chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def _helper_kwargs(
    image: str, volume: str, read_only: bool, user: str, caps: list[str]
) -> dict[str, Any]:
    """`client.containers.create` arguments of a short-lived helper on one volume."""
    return {
        "image": image,
        "name": f"berth-backup-{uuid.uuid4().hex[:12]}",
        "entrypoint": ["python3", SCRIPT],
        "user": user,
        "network_disabled": True,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "cap_add": caps,
        "security_opt": [NO_NEW_PRIVILEGES],
        "mem_limit": "256m",
        "labels": {LABEL_MANAGED: "true", LABEL_ROLE: ROLE_HELPER},
        "volumes": {volume: {"bind": MOUNT, "mode": "ro" if read_only else "rw"}},
        "detach": True,
    }


@contextlib.contextmanager
def _helper(client: docker.DockerClient, command: list[str], **kwargs: Any) -> Iterator[Container]:
    container = client.containers.create(command=command, **kwargs)
    try:
        # This Berth's own helper script, whatever Berth the image was built from.
        container.put_archive("/tmp", _script_tar())
        yield container
    finally:
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)


def _script_tar() -> bytes:
    source = Path(volumetar.__file__).read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(SCRIPT.rsplit("/", 1)[1])
        info.size, info.mode = len(source), 0o644
        tar.addfile(info, io.BytesIO(source))
    return buffer.getvalue()


def _run(container: Container, what: str) -> None:
    container.start()
    result = container.wait(timeout=HELPER_TIMEOUT)
    if result.get("StatusCode") != 0:
        log = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
        raise BerthError(f"{what} failed: {log[-800:] or result}")


@contextlib.contextmanager
def _fetch(container: Container, path: str) -> Iterator[IO[bytes]]:
    """The single file at `path` in a (stopped) container, as a stream."""
    chunks, _ = container.get_archive(path)
    reader = _ChunkReader(iter(chunks))
    outer = tarfile.open(fileobj=reader, mode="r|")  # noqa: SIM115
    try:
        member = outer.next()
        stream = outer.extractfile(member) if member else None
        if stream is None:
            raise BerthError(f"the helper produced no {path}")
        yield stream
    finally:
        outer.close()


@contextlib.contextmanager
def packed(
    client: docker.DockerClient,
    image: str,
    volume: str,
    exclude: list[str] | None = None,
    as_hub_user: bool = False,
) -> Iterator[tarfile.TarFile]:
    """A consistent tar of a volume's contents (member "." is its root), as a stream."""
    # DAC_OVERRIDE, not DAC_READ_SEARCH (which unlocks open_by_handle_at, a way to the host's
    # files): the volume is mounted read-only, so the override can only read.
    user, caps = (HUB_USER, []) if as_hub_user else ("0:0", ["DAC_OVERRIDE"])
    out = f"{OUT_DIR}/volume.tar"
    command = ["pack", MOUNT, out, *(f"--exclude={name}" for name in exclude or [])]
    with _helper(client, command, **_helper_kwargs(image, volume, True, user, caps)) as helper:
        _run(helper, f"reading the volume {volume}")
        with _fetch(helper, out) as stream, tarfile.open(fileobj=stream, mode="r|") as inner:
            yield inner


@contextlib.contextmanager
def sqlite_copy(
    client: docker.DockerClient, image: str, volume: str, relative: str
) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """SQLite's online backup of the database at `relative` in the hub's data volume."""
    out = f"{OUT_DIR}/database.sqlite"
    command = ["sqlite", f"{MOUNT}/{relative}", out]
    with _helper(client, command, **_helper_kwargs(image, volume, True, HUB_USER, [])) as helper:
        _run(helper, "the hub database's online backup")
        chunks, _ = helper.get_archive(out)
        with tarfile.open(fileobj=_ChunkReader(iter(chunks)), mode="r|") as outer:
            member = outer.next()
            stream = outer.extractfile(member) if member else None
            if member is None or stream is None:
                raise BerthError("the database backup produced no file")
            yield member, stream


def wipe(client: docker.DockerClient, image: str, volume: str) -> None:
    """Empty the hub's data volume (as the hub's user: everything in it is the hub's)."""
    kwargs = _helper_kwargs(image, volume, False, HUB_USER, [])
    with _helper(client, ["wipe", MOUNT], **kwargs) as helper:
        _run(helper, f"emptying the volume {volume}")


def put(client: docker.DockerClient, image: str, volume: str, tar_file: IO[bytes]) -> None:
    """Unpack `tar_file` (members under "berth-volume/") into the volume, owners and modes as
    they are in the tar, through a running helper (the module's docstring says why)."""
    kwargs = {**_helper_kwargs(image, volume, False, "0:0", []), "entrypoint": ["sleep"]}
    with _helper(client, [str(PUT_SECONDS)], **kwargs) as helper:
        try:
            helper.start()
            ok = helper.put_archive("/", tar_file)
        except APIError as exc:
            raise BerthError(f"writing the volume {volume} failed: {exc.explanation}") from exc
        if not ok:
            raise BerthError(f"the engine did not write the volume {volume}")


def read_secret(client: docker.DockerClient, image: str, volume: str, relative: str) -> bytes:
    """A small file from a volume (the helper is never started); b"" when it is absent."""
    kwargs = _helper_kwargs(image, volume, True, HUB_USER, [])
    kwargs.pop("entrypoint")
    with _helper(client, ["true"], **kwargs) as helper:
        try:
            with _fetch(helper, f"{MOUNT}/{relative}") as stream:
                return stream.read()
        except NotFound:
            return b""
