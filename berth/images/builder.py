"""Build the image stack through the Engine API, parents first, tagging only what succeeded.

Each image is built untagged and tagged `berth/<name>:<version>` and `:latest` only once its
build finished, so a failed step leaves the previous tags (and running users) untouched.
Images whose parents are built are built side by side (`BuildOptions.jobs` at once): the hub and
base-notebook both need only the foundation, and one's downloads overlap the other's work.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from berth.engine_kind import PODMAN, engine_kind
from berth.errors import BerthError
from berth.images import project
from berth.images.catalog import REPOSITORY_PREFIX, STACK_DIR, ImageDef, build_order, get
from berth.versions import BERTH_VERSION, PINS

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
LABEL_PREFIX = "berth"
SOURCE_LABEL = f"{LABEL_PREFIX}.source"


@dataclass(frozen=True)
class BuildOptions:
    names: list[str] = field(default_factory=list)  # empty: the default build (catalog)
    base_image: str = "debian:bookworm-slim"  # resolved OS base (see osbase.resolve_base)
    ca_bundle: Path | None = None
    version: str = BERTH_VERSION
    no_cache: bool = False
    # The tags' namespace: another one (`berth-alice`) builds the stack beside berth/* to try a
    # change without replacing the images everyone else on the engine runs.
    prefix: str = REPOSITORY_PREFIX
    # How many images may build at once (each only once its parent is built); 1: one by one.
    jobs: int = 2


@dataclass(frozen=True)
class BuildEvent:
    """What the builder reports: `kind` is start, step, output or done."""

    image: str
    kind: str
    text: str = ""
    step: int = 0
    steps: int = 0


@dataclass(frozen=True)
class BuiltImage:
    name: str
    image_id: str
    tags: tuple[str, ...]
    seconds: float


def read_ca_bundle(path: Path) -> bytes:
    """The extra CA file's contents, refused early when it is not a PEM certificate bundle."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BerthError(f"cannot read the CA bundle {path}: {exc.strerror}") from exc
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise BerthError(f"{path} is not a PEM certificate bundle (no BEGIN CERTIFICATE block)")
    return data


def image_labels(image: ImageDef, version: str) -> dict[str, str]:
    labels = {f"{LABEL_PREFIX}.image": image.name, f"{LABEL_PREFIX}.version": version}
    if image.ships_source:
        labels[SOURCE_LABEL] = source_digest()
    return labels


def build_args(image: ImageDef, options: BuildOptions) -> dict[str, str]:
    """The build arguments for one image (pure; unit-tested)."""
    if image.parent is None:
        args = {"BASE_IMAGE": options.base_image}
    else:
        args = {"BASE_CONTAINER": get(image.parent).tag(options.version, options.prefix)}
    args.update({pin: PINS[pin] for pin in image.pins})
    return args


def source_files() -> list[tuple[Path, str]]:
    """Berth's own source as (file, name in the build context), in a stable order: the package,
    and beside it, from a checkout, its pyproject.toml and README.md; from a wheel install, a
    pyproject.toml written from the installed metadata (berth.images.project)."""
    root = Path(__file__).resolve().parents[2]
    files = [
        (path, "berth-src/berth/" + str(path.relative_to(root / "berth")))
        for path in sorted((root / "berth").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    if (root / "pyproject.toml").is_file():
        beside = ("pyproject.toml", "README.md")
        return files + [(root / name, f"berth-src/{name}") for name in beside]
    return [*files, (project.written_pyproject(), "berth-src/pyproject.toml")]


def source_digest() -> str:
    """A hash of Berth's source: the hub image carries it, so `berth up` can tell it is stale."""
    digest = hashlib.sha256()
    for path, name in source_files():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _add_tree(tar: tarfile.TarFile, directory: Path, prefix: str = "") -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            _add_tree_file(tar, path, prefix + str(path.relative_to(directory)))


def make_context(image: ImageDef, ca_bundle: bytes | None) -> io.BytesIO:
    """A tar of the image's directory; the foundation also gets extra-ca.crt (empty if none)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add_tree(tar, image.context_dir)
        for borrowed in image.borrows:
            path = STACK_DIR / borrowed
            _add_tree_file(tar, path, path.name)
        if image.ships_source:
            for path, name in source_files():
                _add_tree_file(tar, path, name)
        if image.parent is None:
            data = ca_bundle or b""
            info = tarfile.TarInfo("extra-ca.crt")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _add_tree_file(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tar.gettarinfo(str(path), arcname=arcname)
    # Stable metadata: the cache key of COPY must not change with checkout times.
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    with path.open("rb") as handle:
        tar.addfile(info, handle)


# How much of a failed step's output the error shows (pip's and apt's errors end their output).
FAILED_OUTPUT_LINES = 25


def parse_stream(image: str, chunks: Iterable[Mapping[str, Any]]) -> Iterator[BuildEvent | str]:
    """Turn the engine's build stream into events; yields the image id (a str) last.

    Raises BerthError naming the image and the step that failed, with the step's last lines
    of output (the command's own error: the CLI shows only the steps while all goes well).
    """
    step_text, image_id = "", None
    said: deque[str] = deque(maxlen=FAILED_OUTPUT_LINES)  # the current step's last lines
    for chunk in chunks:
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            where = f" at {step_text}" if step_text else ""
            output = "".join(f"\n  | {line}" for line in said)
            raise BerthError(f"building {image} failed{where}:{output}\n{detail.strip()}")
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        text = chunk.get("stream", "")
        for line in text.splitlines():
            match = _STEP.match(line.strip())
            if match:
                step_text = f"step {match[1]}/{match[2]} ({match[3]})"
                said.clear()
                yield BuildEvent(image, "step", match[3], int(match[1]), int(match[2]))
            elif line.strip():
                said.append(line.rstrip())
                yield BuildEvent(image, "output", line.rstrip())
    if image_id is None:
        raise BerthError(f"building {image} ended without an image id (engine stream cut short?)")
    yield image_id


def ready_to_build(
    order: Sequence[ImageDef], done: Iterable[str], started: Iterable[str]
) -> list[ImageDef]:
    """The images of ``order`` not started yet whose parent is built (or is the OS base), in
    order (pure; unit-tested). ``order`` holds every ancestor of its images (build_order)."""
    done_names, started_names = set(done), set(started)
    return [
        image
        for image in order
        if image.name not in started_names and (image.parent is None or image.parent in done_names)
    ]


def tag_names(ref: str, engine: str) -> list[tuple[str, str]]:
    """The (repository, tag) pairs that make the short name `ref` (`berth/hub:latest`) mean the
    image tagged, on `engine`.

    Podman stores a tag made through its compatible API as `docker.io/<ref>`, but resolves a short
    name to `localhost/<ref>` first: the name `podman load` or `podman build` gives an image. An
    image loaded there earlier would then shadow the one just built, and `berth up` or a spawner
    would run the old image under the name of the new one. So on Podman the `localhost/` name is
    tagged too, and both resolve to what was built.
    """
    repository, _, tag = ref.rpartition(":")
    names = [(repository, tag)]
    first = repository.split("/", 1)[0]
    qualified = "/" in repository and ("." in first or ":" in first or first == "localhost")
    if engine == PODMAN and not qualified:  # a registry's name resolves as written
        names.append((f"localhost/{repository}", tag))
    return names


def tag_image(client: docker.DockerClient, image_id: str, ref: str, engine: str) -> None:
    """Tag `image_id` so that the short name `ref` resolves to it on `engine` (tag_names)."""
    for repository, tag in tag_names(ref, engine):
        client.api.tag(image_id, repository, tag)


def _build_one(
    client: docker.DockerClient,
    image: ImageDef,
    options: BuildOptions,
    ca_bundle: bytes | None,
    report: Callable[[BuildEvent], None],
    engine: str,
) -> BuiltImage:
    started = time.monotonic()
    report(BuildEvent(image.name, "start"))
    stream = client.api.build(
        fileobj=make_context(image, ca_bundle),
        custom_context=True,
        buildargs=build_args(image, options),
        labels=image_labels(image, options.version),
        rm=True,
        forcerm=True,
        nocache=options.no_cache,
        decode=True,
    )
    image_id = ""
    for item in parse_stream(image.name, stream):
        if isinstance(item, str):
            image_id = item
        else:
            report(item)
    tags = (image.tag(options.version, options.prefix), image.tag("latest", options.prefix))
    for ref in tags:
        tag_image(client, image_id, ref, engine)
    seconds = time.monotonic() - started
    report(BuildEvent(image.name, "done", f"{seconds:.0f}s"))
    return BuiltImage(image.name, image_id, tags, seconds)


def build_stack(
    client: docker.DockerClient,
    options: BuildOptions,
    report: Callable[[BuildEvent], None] = lambda event: None,
) -> list[BuiltImage]:
    """Build the requested images and their ancestors, each once its parent is built, up to
    ``options.jobs`` at once; return what was built, in build order.

    When one build fails, no further build starts; those running are let finish (their tags
    are whole images), then the first failure is raised.
    """
    ca_bundle = read_ca_bundle(options.ca_bundle) if options.ca_bundle else None
    order = build_order(options.names)
    engine = engine_kind(client)
    lock = threading.Lock()

    def serialized(event: BuildEvent) -> None:  # reporters are not thread-safe
        with lock:
            report(event)

    built: dict[str, BuiltImage] = {}
    running: dict[Future[BuiltImage], str] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        while True:
            if failure is None:
                started = [*built, *running.values()]
                for image in ready_to_build(order, built, started):
                    future = pool.submit(
                        _build_one, client, image, options, ca_bundle, serialized, engine
                    )
                    running[future] = image.name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                del running[future]
                try:
                    result = future.result()
                except BaseException as exc:
                    failure = failure or exc
                else:
                    built[result.name] = result
    if failure is not None:
        raise failure
    return [built[image.name] for image in order if image.name in built]
