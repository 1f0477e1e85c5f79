"""Making sure the images a command needs are on this machine: Berth's own are built (with
their parents), others pulled. No output of its own: callers pass ``say`` and ``report``.

Used by `berth images build`, `berth run` (its notebook image) and `berth up` (the hub image,
rebuilt when Berth's source changed, and the notebook images berth.yaml names).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound, NotFound

from berth.errors import BerthError
from berth.images import catalog, osbase
from berth.images.builder import (
    SOURCE_LABEL,
    BuildEvent,
    BuildOptions,
    BuiltImage,
    build_stack,
    source_digest,
)

Say = Callable[[str], None]
Build = Callable[[list[str]], object]  # build these images of the stack (and their parents)


def build(
    client: docker.DockerClient,
    names: list[str],
    *,
    ca_bundle: Path | None = None,
    base_image: str = osbase.DEFAULT_BASE_IMAGE,
    base_source: osbase.BaseSource = osbase.BaseSource.AUTO,
    no_cache: bool = False,
    report: Callable[[BuildEvent], None] = lambda event: None,
    say: Say = lambda text: None,
    prefix: str = catalog.REPOSITORY_PREFIX,
    jobs: int = BuildOptions.jobs,
) -> list[BuiltImage]:
    """Build ``names`` and their parents (the whole stack when empty) on a resolved OS base,
    tagged ``<prefix>/<name>``."""
    base = osbase.resolve_base(client, base_image, base_source, say=say)
    options = BuildOptions(
        names=names,
        base_image=base,
        ca_bundle=ca_bundle,
        no_cache=no_cache,
        prefix=prefix,
        jobs=jobs,
    )
    return build_stack(client, options, report)


def stack_repository(image: str) -> str | None:
    """The stack's repository ``image`` names (``berth/hub:latest`` -> ``berth/hub``), if any."""
    repository = image.split(":", 1)[0]
    return repository if repository in {item.repository for item in catalog.STACK} else None


def to_build(client: docker.DockerClient, images: list[str]) -> list[str]:
    """Which of ``images`` (references) to build: the stack's that are missing, and the hub
    image when Berth's source changed since it was built (the hub runs Berth's own code:
    spawner, start-up, accounts). Images not of the stack are left alone."""
    wanted = []
    for ref in images:
        repository = stack_repository(ref)
        if repository is None:
            continue
        try:
            found = client.images.get(ref)
        except NotFound:
            wanted.append(repository)
            continue
        if repository == catalog.HUB_IMAGE.repository and (
            found.labels.get(SOURCE_LABEL) != source_digest()
        ):
            wanted.append(repository)
    return wanted


def ensure_image(client: docker.DockerClient, image: str, build: Build, say: Say) -> None:
    """``image`` on this machine: present, else built (one of the stack's), else pulled."""
    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    repository = stack_repository(image)
    if repository is not None:
        say(f"{image} is not built yet; building it now")
        build([repository])
        return
    try:
        say(f"pulling {image} …")
        client.images.pull(image)
    except APIError as exc:
        raise BerthError(
            f"image {image} is not on this machine and cannot be pulled: {exc.explanation}",
            hint="build one of Berth's images with `berth images build`, or pull it yourself",
        ) from exc
