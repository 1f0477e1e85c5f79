"""Walk the schema: every key path of berth.yaml, with its field (for docs and their test)."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from berth.config.schema import BerthConfig


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if found := model_in(arg):
            return found
    return None


def is_list_of_models(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list and model_in(annotation) is not None


def key_paths(
    model: type[BaseModel] = BerthConfig, prefix: str = ""
) -> Iterator[tuple[str, FieldInfo]]:
    """``("listen", field), ("listen.address", field), ..., ("services[].name", field)``."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        yield path, field
        child = model_in(field.annotation)
        if child is not None:
            suffix = "[]." if is_list_of_models(field.annotation) else "."
            yield from key_paths(child, path + suffix)
