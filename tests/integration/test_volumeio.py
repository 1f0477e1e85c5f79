"""volumeio.put (how `berth restore` writes volumes) on the real engine, Docker or Podman
(`scripts/test.sh --engine podman tests/integration/test_volumeio.py`): the tar's files,
owners and modes reach a new volume and one that already holds data."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from run_once import run_once

docker = pytest.importorskip("docker")

from berth.deploy import volumeio  # noqa: E402 -- after the docker check

HUB_IMAGE = "berth/hub:latest"


@pytest.fixture
def hub_image(docker_client: Any) -> str:
    try:
        docker_client.images.get(HUB_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{HUB_IMAGE} is not in this engine")
    return HUB_IMAGE


@pytest.fixture
def volume(docker_client: Any) -> Iterator[str]:
    name = f"berth-test-volumeio-{uuid.uuid4().hex[:10]}"
    docker_client.volumes.create(name)
    yield name
    docker_client.volumes.get(name).remove(force=True)


def _tar(files: dict[str, tuple[bytes, int, int]]) -> io.BytesIO:
    """A tar as restore makes it: the volume's root, then its files (name -> data, uid, mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        root = tarfile.TarInfo("berth-volume")
        root.type, root.mode, root.uid, root.gid = tarfile.DIRTYPE, 0o750, 1000, 100
        tar.addfile(root)
        for name, (data, uid, mode) in files.items():
            info = tarfile.TarInfo(f"berth-volume/{name}")
            info.size, info.uid, info.gid, info.mode = len(data), uid, 100, mode
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _listing(client: Any, image: str, volume: str) -> list[str]:
    """`<uid> <gid> <mode> <name> <content>` of the volume's root and each of its files."""
    script = (
        "cd /v && stat -c '%u %g %a .' . && "
        'for f in *; do echo "$(stat -c \'%u %g %a\' "$f") $f $(cat "$f")"; done'
    )
    output = run_once(
        client,
        image,
        ["sh", "-c", script],
        entrypoint=[],
        user="0:0",
        volumes={volume: {"bind": "/v", "mode": "ro"}},
        network_mode="none",
    )
    return output.decode().splitlines()


def test_put_reaches_a_new_volume(docker_client, hub_image, volume):
    """A user volume's restore (into a volume just made). Failed on Podman before the helper
    ran during the upload: the files stayed in the never-started helper's own layer."""
    volumeio.put(
        docker_client,
        hub_image,
        volume,
        _tar({"notebook.ipynb": (b"{}", 1000, 0o644), "private": (b"key", 0, 0o600)}),
    )
    assert _listing(docker_client, hub_image, volume) == [
        "1000 100 750 .",
        "1000 100 644 notebook.ipynb {}",
        "0 100 600 private key",
    ]


def test_put_reaches_a_volume_that_holds_data(docker_client, hub_image, volume):
    """The hub data's restore (into its emptied volume, used before): the new files join the
    old ones; on Podman they never arrived before this change."""
    volumeio.put(docker_client, hub_image, volume, _tar({"old": (b"1", 1000, 0o644)}))
    volumeio.put(docker_client, hub_image, volume, _tar({"new": (b"2", 1000, 0o640)}))
    assert _listing(docker_client, hub_image, volume) == [
        "1000 100 750 .",
        "1000 100 640 new 2",
        "1000 100 644 old 1",
    ]
    assert volumeio.read_secret(docker_client, hub_image, volume, "new") == b"2"
    assert volumeio.read_secret(docker_client, hub_image, volume, "absent") == b""
