"""The catalog of images Berth builds: what each one is built on, what it needs, and where its
build context lives (``berth/images/stack/<name>/``: Dockerfile, start scripts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from berth.errors import BerthError
from berth.versions import BERTH_VERSION

STACK_DIR = Path(__file__).parent / "stack"
REPOSITORY_PREFIX = "berth"
# One lowercase path component, as the engine accepts it in a repository name.
_PREFIX_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class ImageDef:
    name: str
    parent: str | None  # the stack image this one is FROM; None means the OS base
    summary: str
    ships_source: bool = False  # the build context carries Berth's own source (the hub)
    # Version pins the Dockerfile takes as build arguments (names in berth.versions.PINS).
    pins: tuple[str, ...] = ()
    # Files of other images' directories (relative to STACK_DIR) that this build context carries
    # too, under their own names: one install script shared by two images stays one file.
    borrows: tuple[str, ...] = ()
    # Built by a bare `berth images build` (and so by CI's). The big data-science images (Spark,
    # TensorFlow: each a download of hundreds of MB) are built only when named, or with --all.
    default_build: bool = True

    @property
    def repository(self) -> str:
        return f"{REPOSITORY_PREFIX}/{self.name}"

    @property
    def context_dir(self) -> Path:
        return STACK_DIR / self.name

    def tag(self, version: str = BERTH_VERSION, prefix: str = REPOSITORY_PREFIX) -> str:
        return f"{prefix}/{self.name}:{version}"


STACK: tuple[ImageDef, ...] = (
    ImageDef("foundation", None, "Debian, tini, jovyan, start.sh, hooks, fix-permissions"),
    ImageDef(
        "base-notebook",
        "foundation",
        "Jupyter Server, JupyterLab, Notebook 7, singleuser",
        pins=("JUPYTERHUB_VERSION", "UV_VERSION"),
    ),
    ImageDef(
        "hub",
        "foundation",
        "JupyterHub, proxy, authenticators, Berth's spawner",
        ships_source=True,
        pins=("JUPYTERHUB_HUB_VERSION", "UV_VERSION"),
    ),
    ImageDef("minimal-notebook", "base-notebook", "ps, top, less, editors, git, curl, nbconvert"),
    ImageDef("scipy-notebook", "minimal-notebook", "numpy, scipy, pandas, matplotlib, sklearn, …"),
    ImageDef("r-notebook", "minimal-notebook", "R from Debian, IRkernel, tidyverse, caret, …"),
    ImageDef(
        "datascience-notebook",
        "scipy-notebook",
        "scipy-notebook's Python and r-notebook's R in one image",
        borrows=("r-notebook/install-r.sh",),
    ),
    ImageDef("registry", "foundation", "Debian's docker-registry: images for a Swarm's nodes"),
    ImageDef(
        "pyspark-notebook",
        "scipy-notebook",
        "PySpark (Spark in the package) and Debian's headless Java 17",
        default_build=False,
    ),
    ImageDef(
        "all-spark-notebook",
        "pyspark-notebook",
        "pyspark-notebook with r-notebook's R, and reticulate for Spark from R",
        borrows=("r-notebook/install-r.sh",),
        default_build=False,
    ),
    ImageDef(
        "tensorflow-notebook",
        "scipy-notebook",
        "TensorFlow (CPU) and Keras on scipy-notebook",
        default_build=False,
    ),
)
_BY_NAME = {image.name: image for image in STACK}
DEFAULT_NOTEBOOK_IMAGE = _BY_NAME["base-notebook"]
HUB_IMAGE = _BY_NAME["hub"]


def get(name: str) -> ImageDef:
    """Look an image up by short name (`base-notebook`) or repository (`berth/base-notebook`)."""
    short = name.split(":", 1)[0].removeprefix(f"{REPOSITORY_PREFIX}/")
    try:
        return _BY_NAME[short]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise BerthError(f"unknown image {name!r}; the stack has: {known}") from None


def check_prefix(prefix: str) -> str:
    """A tag namespace for `berth images build --prefix`: one lowercase name, no registry/tag."""
    if not _PREFIX_RE.match(prefix) or len(prefix) > 64:
        raise BerthError(
            f"prefix {prefix[:70]!r} is not a repository namespace like 'berth' or 'berth-alice' "
            "(lowercase letters, digits, '.', '_', '-', at most 64 characters)"
        )
    return prefix


def build_order(names: list[str] | None = None, everything: bool = False) -> list[ImageDef]:
    """The requested images and all their ancestors, parents first. Without names: the images
    of the default build, or with `everything` the whole stack."""
    if not names:
        return [image for image in STACK if everything or image.default_build]
    wanted: set[str] = set()
    for name in names:
        image: ImageDef | None = get(name)
        while image is not None:
            wanted.add(image.name)
            image = _BY_NAME[image.parent] if image.parent else None
    return [image for image in STACK if image.name in wanted]
