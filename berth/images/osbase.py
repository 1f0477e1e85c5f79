"""The operating-system base of the stack: a registry image, or Debian bootstrapped locally.

The Dockerfiles are the same either way; only the BASE_IMAGE build argument changes. Where no
registry answers (air-gapped hosts, this project's CI), mmdebstrap builds the same Debian release
from Debian's packages and the result is imported as a local image, once: later builds reuse it,
so the layers on top of it stay cached.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from berth.errors import BerthError

DEFAULT_BASE_IMAGE = "debian:bookworm-slim"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


class BaseSource(StrEnum):
    AUTO = "auto"  # local image, else pull, else bootstrap
    REGISTRY = "registry"  # local image or pull; never bootstrap
    BOOTSTRAP = "bootstrap"  # always the locally bootstrapped Debian


def imported_id(answer: str) -> str:
    """The image id in the engine's answer to an import (JSON lines; the id is a status)."""
    for line in reversed(answer.splitlines()):
        with contextlib.suppress(ValueError, AttributeError):
            status = str(json.loads(line).get("status", ""))
            if status.startswith("sha256:"):
                return status
    return ""


def bootstrap_tag(suite: str) -> str:
    return f"berth/os-base:{suite}"


def _have_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def resolve_base(
    client: docker.DockerClient,
    base_image: str = DEFAULT_BASE_IMAGE,
    source: BaseSource = BaseSource.AUTO,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    say: Callable[[str], None] = print,
) -> str:
    """Return the image reference to use as BASE_IMAGE, pulling or bootstrapping it if needed."""
    if source is not BaseSource.BOOTSTRAP:
        if _have_image(client, base_image):
            return base_image
        try:
            say(f"pulling {base_image} …")
            client.images.pull(base_image)
            return base_image
        except APIError as exc:
            if source is BaseSource.REGISTRY:
                raise BerthError(
                    f"cannot pull the base image {base_image}: {exc.explanation or exc}",
                    hint="use --base-source bootstrap to build Debian from its packages instead",
                ) from exc
            say(f"no registry answered for {base_image}; bootstrapping Debian {suite} instead")
    tag = bootstrap_tag(suite)
    if _have_image(client, tag):
        return tag
    bootstrap(client, tag, suite=suite, mirror=mirror, say=say)
    return tag


def mmdebstrap_command(suite: str, mirror: str, target: Path) -> list[str]:
    """A minbase Debian like the registry's slim image: no docs, man pages or apt lists."""
    return [
        "mmdebstrap",
        "--variant=minbase",
        # merged /usr without the usrmerge package (which would drag in perl)
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        # No fsync after every file dpkg unpacks (a third of the bootstrap's time here): the
        # result is a tarball, made again from scratch if anything fails. It stays in the image
        # (/etc/dpkg/dpkg.cfg.d/99mmdebstrap), as in the images of Debian on Docker Hub, for the
        # apt steps of every build on top (their docker-apt-speedup).
        "--dpkgopt=force-unsafe-io",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        '--aptopt=Acquire::Languages "none"',
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
        suite,
        str(target),
        mirror,
    ]


def bootstrap(
    client: docker.DockerClient,
    tag: str,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    say: Callable[[str], None] = print,
) -> None:
    """Build a Debian root filesystem with mmdebstrap and import it as image `tag`."""
    if shutil.which("mmdebstrap") is None:
        raise BerthError(
            "no base image could be pulled and mmdebstrap is not installed",
            hint="apt-get install mmdebstrap (Debian/Ubuntu), or make a registry reachable",
        )
    if os.geteuid() != 0:
        raise BerthError(
            "bootstrapping the Debian base image needs root (mmdebstrap creates device files)",
            hint="run this build once as root; later builds reuse the imported image",
        )
    with tempfile.TemporaryDirectory(prefix="berth-osbase-") as tmp:
        target = Path(tmp) / "rootfs.tar"
        say(f"bootstrapping Debian {suite} from {mirror} with mmdebstrap …")
        result = subprocess.run(
            mmdebstrap_command(suite, mirror, target), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            raise BerthError(f"mmdebstrap failed to bootstrap Debian {suite}:\n{tail}")
        repository, _, version = tag.partition(":")
        say(f"importing the root filesystem as {tag} …")
        answer = client.api.import_image_from_file(
            str(target), repository=repository, tag=version, changes=['CMD ["bash"]']
        )
        # Tagged again by id: Podman's compatible API ignores the import's tag (`:latest`).
        image_id = imported_id(answer)
        if image_id:
            client.api.tag(image_id, repository, version)
