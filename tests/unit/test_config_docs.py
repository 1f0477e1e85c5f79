"""docs/configuration.md documents every berth.yaml key, and only keys that exist.

Each key has a heading "`key.path`" followed by Type, Default and Example lines; the Default
must match the schema's, so the documentation cannot drift from the code.
"""

import re
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from berth.config.keys import key_paths, model_in

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
HEADING = re.compile(r"^#{2,4} `([a-z_.\[\]]+)`\s*$", re.MULTILINE)


def documented() -> dict[str, str]:
    """Key path -> the text under its heading."""
    text = DOCS.read_text(encoding="utf-8")
    matches = list(HEADING.finditer(text))
    return {
        m.group(1): text[m.end() : matches[i + 1].start() if i + 1 < len(matches) else None]
        for i, m in enumerate(matches)
    }


def expected_default(field: FieldInfo) -> str:
    default = field.default
    if default is PydanticUndefined:
        return "required"
    if default is None:
        return "unset"
    if isinstance(default, SecretStr):
        default = default.get_secret_value()
    dumped = yaml.safe_dump(default, default_flow_style=True, width=1000)
    return "`" + dumped.removesuffix("\n").removesuffix("\n...").strip() + "`"


SCHEMA = dict(key_paths())
DOCUMENTED = documented()


@pytest.mark.parametrize("path", sorted(SCHEMA))
def test_key_is_documented(path):
    if path not in DOCUMENTED:
        pytest.fail(f"add a '### `{path}`' section to docs/configuration.md")
    body = DOCUMENTED[path]
    assert "- **Type:**" in body, f"{path}: no Type line"
    field = SCHEMA[path]
    is_section = model_in(field.annotation) is not None
    if not is_section or path == "services":
        match = re.search(r"^- \*\*Default:\*\* (.+)$", body, re.MULTILINE)
        assert match, f"{path}: no Default line"
        assert match.group(1) == expected_default(field), f"{path}: documented default is stale"
        assert "- **Example:**" in body, f"{path}: no Example line"
    prose = [line for line in body.splitlines() if line and not line.startswith("- **")]
    assert prose, f"{path}: say what the key means"


def test_no_documented_key_is_gone_from_the_schema():
    assert sorted(set(DOCUMENTED) - set(SCHEMA)) == []


def test_yaml_examples_in_the_docs_validate():
    from berth.config import config_from_data

    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks
    for block in blocks:
        data = yaml.safe_load(block)
        if "auth" in data and "users" not in data and data["auth"]["type"] == "github":
            data["users"] = {"admins": ["someone"]}
        config_from_data(data)
