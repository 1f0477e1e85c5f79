"""GPU requests: which servers get GPUs, chosen per image or per options-form profile.

``gpus`` maps an image (``berth/scipy-notebook:latest``) or a display name of ``allowed_images``
(a profile: ``"PyTorch (GPU)"``) to a request, as ``docker run --gpus`` takes it:

* ``"all"``: every GPU of the host;
* a count ``n`` (1 or more): any ``n`` GPUs;
* a list of device indexes or UUIDs (``["0", "GPU-3a4f…"]``): exactly those.

The engine gets what the docker CLI sends for ``--gpus``: a device request with the ``gpu``
capability and no driver named (dockerd gives it to the driver that registered that capability:
the NVIDIA Container Toolkit's). Pure: settings in, plain dicts out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ALL = "all"
ALL_COUNT = -1  # the engine's "every device"
# An index (0, 1, …) or an NVIDIA UUID (GPU-…, MIG-…): letters, digits, '-', ':', '/'.
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:/_-]{0,99}$")


@dataclass(frozen=True)
class GpuRequest:
    count: int = 0  # ALL_COUNT, or how many; 0 when device_ids name them
    device_ids: tuple[str, ...] = ()

    def device_request(self) -> dict[str, Any]:
        """Keyword arguments of ``docker.types.DeviceRequest`` (what ``--gpus`` sends)."""
        return {
            "driver": "",
            "count": self.count,
            "device_ids": list(self.device_ids),
            "capabilities": [["gpu"]],
            "options": {},
        }

    def describe(self) -> str:
        if self.device_ids:
            return f"GPU {', '.join(self.device_ids)}"
        if self.count == ALL_COUNT:
            return "all GPUs"
        return f"{self.count} GPU" + ("s" if self.count > 1 else "")


def parse(value: Any) -> GpuRequest:
    """A request as written in the settings -> :class:`GpuRequest`; ValueError says why not."""
    if isinstance(value, str) and value.strip().lower() == ALL:
        return GpuRequest(count=ALL_COUNT)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"a GPU count must be 1 or more, not {value}")
        return GpuRequest(count=value)
    if isinstance(value, list | tuple) and value:
        ids = [
            str(item) if isinstance(item, int) and not isinstance(item, bool) else item
            for item in value
        ]
        bad = [item for item in ids if not (isinstance(item, str) and _DEVICE_ID.match(item))]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a GPU index or UUID")
        if len(set(ids)) != len(ids):
            raise ValueError(f"GPU devices listed twice: {ids}")
        return GpuRequest(device_ids=tuple(ids))
    raise ValueError(
        f"a GPU request is 'all', a count (1 or more) or a list of GPU indexes or UUIDs, "
        f"not {value!r:.60}"
    )


def parse_all(gpus: Mapping[str, Any]) -> dict[str, GpuRequest]:
    """Every entry of the ``gpus`` setting, each checked (ValueError names the entry)."""
    parsed = {}
    for key, value in gpus.items():
        try:
            parsed[str(key)] = parse(value)
        except ValueError as exc:
            raise ValueError(f"gpus[{key!r}]: {exc}") from None
    return parsed


def request_for(
    gpus: Mapping[str, GpuRequest], allowed: Mapping[str, str], requested: object, image: str
) -> GpuRequest | None:
    """The GPUs of the server about to start, or None.

    ``requested`` is what the user chose (``user_options["image"]``: a display name or an
    image; nothing for the default). A profile's own entry (its display name) comes first, so
    two profiles of one image can differ ("PyTorch (CPU)", "PyTorch (GPU)"); then the image's.
    """
    if isinstance(requested, list) and len(requested) == 1:  # raw form data
        requested = requested[0]
    if isinstance(requested, str) and requested in allowed and requested in gpus:
        return gpus[requested]
    return gpus.get(image)


def form_labels(allowed: Mapping[str, str], gpus: Mapping[str, GpuRequest]) -> dict[str, str]:
    """Display name -> the label the options form shows, saying which choices come with GPUs."""
    labels = {}
    for display, image in allowed.items():
        request = request_for(gpus, allowed, display, image)
        labels[display] = f"{display} (with {request.describe()})" if request else display
    return labels
