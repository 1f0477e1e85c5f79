"""Image choice (allowed images, the options form) and making sure the image is on the host."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import docker.errors

from berth import names
from berth.engine_kind import image_names
from berth.labels import (
    LABEL_SNAPSHOT_NAME,
    LABEL_SNAPSHOT_OWNER,
    LABEL_SNAPSHOT_TAKEN,
    snapshot_share_label,
)

from . import errors
from .engine_api import EngineRecord, ImageStore
from .progress import ProgressEvent

Report = Callable[[ProgressEvent], None]

# Berth's images are built on the host (`berth images build`), never pulled: a `berth/...` image
# on a registry is whoever registered that name, not Berth.
OWN_REPOSITORY_PREFIX = "berth/"


def is_own_image(image: str) -> bool:
    """Whether ``image`` names one of Berth's own (locally built) images."""
    return image.startswith(OWN_REPOSITORY_PREFIX)


def normalize_allowed(value: object) -> dict[str, str]:
    """``allowed_images`` (list or dict, already resolved if callable) -> {display: image}."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return {str(v): str(v) for v in value}
    raise TypeError(f"allowed_images must be a list or a dict, not {type(value).__name__}")


SNAPSHOT_REPOSITORY = "berth-snapshot"  # berth.deploy.snapshots names its images so


def snapshot_tag(prefix: str, owner: str, name: str) -> str:
    """The tag ``berth snapshot take`` gives ``owner``'s snapshot ``name`` (its image_ref)."""
    return f"{SNAPSHOT_REPOSITORY}/{prefix.lower()}/u{names.escape(owner)}:{name}"


def snapshot_choices(records: list[EngineRecord], user: str, prefix: str) -> dict[str, str]:
    """Display name -> image of the snapshots ``user`` may start, from image summaries (oldest
    first): their own ("Snapshot NAME") and those an admin shared with them ("Snapshot NAME
    from OWNER").

    The engine filtered by the deployment's prefix label; the owner and share labels are checked
    here (the records hold other users' snapshots too), and only the one tag
    ``berth snapshot`` gives a snapshot with those labels counts (an image tagged by hand into
    the snapshot repository, or labelled for one user and tagged as another's, is no choice)."""
    found = []
    for record in records:
        labels = record.get("Labels") or {}
        owner, name = labels.get(LABEL_SNAPSHOT_OWNER), labels.get(LABEL_SNAPSHOT_NAME)
        if not isinstance(owner, str) or not isinstance(name, str) or not owner:
            continue
        if owner == user:
            display = f"Snapshot {name}"
        elif labels.get(snapshot_share_label(user)) == user:
            display = f"Snapshot {name} from {owner}"
        else:
            continue
        tag = snapshot_tag(prefix, owner, name)
        if tag in image_names(record.get("RepoTags") or []):
            found.append((labels.get(LABEL_SNAPSHOT_TAKEN, ""), display, tag))
    return {display: tag for _, display, tag in sorted(found)}


def choose_image(default_image: str, allowed: Mapping[str, str], requested: object) -> str:
    """The image to run: the user's choice if allowed (by display name or image), else refuse.

    With no allowed list, only ``default_image`` may be chosen. Without a choice, the default
    image is used if allowed, else the first allowed one.
    """
    choices = dict(allowed) or {default_image: default_image}
    if requested in (None, ""):
        return default_image if default_image in choices.values() else next(iter(choices.values()))
    if isinstance(requested, list) and len(requested) == 1:  # raw form data
        requested = requested[0]
    if isinstance(requested, str):
        if requested in choices:
            return choices[requested]
        if requested in choices.values():
            return requested
    raise errors.image_not_allowed(requested, list(choices))


def options_form_html(
    allowed: Mapping[str, str], default_image: str, labels: Mapping[str, str] | None = None
) -> str:
    """A ``<select>`` of the allowed images; empty when there is nothing to choose.

    ``labels`` (display name -> text shown) may say more than the name, e.g. that a choice
    comes with GPUs; the value sent back is always the display name."""
    if len(allowed) < 2:
        return ""
    labels = labels or {}
    options = []
    for display, image in allowed.items():
        selected = " selected" if image == default_image else ""
        options.append(
            f'<option value="{html.escape(display, quote=True)}"{selected}>'
            f"{html.escape(labels.get(display, display))}</option>"
        )
    return (
        '<label for="berth-image">Image</label>\n'
        '<select class="form-control" name="image" id="berth-image" required autofocus>\n'
        + "\n".join(options)
        + "\n</select>"
    )


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """Form data (lists of strings) -> ``user_options``; only ``image`` is understood."""
    image = formdata.get("image") or []
    return {"image": image[0]} if image else {}


class PullProgress:
    """Folds the engine's pull records into one percentage and a message.

    Docker reports each layer's bytes while it downloads; Podman's compatible API (4.3) only
    says that a layer is being pulled and that it is complete. Until some layer's byte count is
    known, the message counts the layers fetched and those the engine has already, instead of
    showing "0 of 0 MB".
    """

    def __init__(self, image: str, start: int = 10, end: int = 60) -> None:
        self.image = image
        self.start, self.end = start, end
        self.layers: dict[str, tuple[int, int]] = {}  # id -> (bytes done, bytes in all)
        self.present: set[str] = set()  # "Already exists": nothing to fetch
        self.finished: set[str] = set()
        self.percent = start  # never goes back when a new layer's size becomes known

    def event(self, record: Mapping[str, Any]) -> ProgressEvent | None:
        layer = record.get("id")
        detail = record.get("progressDetail") or {}
        status = str(record.get("status", ""))
        if layer and detail.get("total"):
            if status.startswith("Download"):
                self.layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
        elif layer and status in {"Download complete", "Pull complete", "Already exists"}:
            _, total = self.layers.get(layer, (0, 0))
            self.layers[layer] = (total, total)
            self.finished.add(layer)
            if status == "Already exists":
                self.present.add(layer)
        elif layer and status == "Pulling fs layer":
            self.layers.setdefault(layer, (0, 0))
        else:
            return {"message": f"Pulling {self.image}: {status}"} if status else None
        done = sum(c for c, _ in self.layers.values())
        total = sum(t for _, t in self.layers.values())
        if not total:
            # No byte counts (yet, or from this engine at all). Podman announces each layer
            # only once the one before it is fetched, so how many are left is not known: the
            # percentage waits for bytes, or for the pull's end.
            fetched = len(self.finished - self.present)
            return {
                "progress": self.percent,
                "message": f"Pulling {self.image}: {fetched} layers fetched, "
                f"{len(self.present)} here already",
            }
        fraction = min(1.0, done / total)
        shown = f"{done / 1e6:.0f} of {total / 1e6:.0f} MB ({len(self.layers)} layers)"
        self.percent = max(self.percent, int(self.start + fraction * (self.end - self.start)))
        return {"progress": self.percent, "message": f"Pulling {self.image}: {shown}"}


async def ensure_image(engine: ImageStore, image: str, policy: str, report: Report) -> EngineRecord:
    """Make ``image`` present according to ``policy``; returns its inspect record."""
    found = await engine.inspect_image(image)
    if is_own_image(image):  # whatever the policy: never pulled
        if found is None:
            raise errors.own_image_missing(image)
        return found
    if policy == "never" or (policy == "ifnotpresent" and found is not None):
        if found is None:
            raise errors.image_missing(image, policy)
        return found
    report({"progress": 10, "message": f"Pulling image {image}"})
    progress = PullProgress(image)

    def on_record(record: EngineRecord) -> None:
        event = progress.event(record)
        if event:
            report(event)

    try:
        await engine.pull(image, on_record)
    except docker.errors.APIError as exc:
        if errors.is_unreachable(exc):
            raise errors.engine_unreachable(str(exc)) from exc
        raise errors.pull_failed(image, str(exc.explanation or exc)) from exc
    found = await engine.inspect_image(image)
    if found is None:
        raise errors.pull_failed(image, "the engine reported success but has no such image")
    report({"progress": 60, "message": f"Pulled image {image}"})
    return found
