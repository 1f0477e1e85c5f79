"""The base of every berth.yaml section."""

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    """Unknown keys are errors (a typo must not be ignored); values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # `tls:` with every line below commented out is YAML null: take the defaults rather
        # than refusing the file. Required keys and keys whose default is null are kept.
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields

        def has_other_default(key: str) -> bool:
            field = fields.get(key)
            return field is not None and not field.is_required() and field.default is not None

        return {k: v for k, v in data.items() if v is not None or not has_other_default(k)}
