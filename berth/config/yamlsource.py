"""Read YAML keeping line numbers, and refuse duplicate keys (PyYAML keeps the last silently)."""

from __future__ import annotations

from typing import Any

import yaml

from berth.config.errors import ConfigError, Problem


def key_path(parts: tuple[str | int, ...]) -> str:
    """``("services", 0, "token")`` -> ``services[0].token``: how errors name a key."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_yaml(text: str, file: str) -> tuple[Any, dict[str, int]]:
    """Return the document and the 1-based line of every key path in it."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[str, int] = {}
        _walk(node, (), lines, file)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "syntax error"
        column = f", column {mark.column + 1}" if mark else ""
        raise ConfigError(file, [Problem("", f"not valid YAML: {what}{column}", line)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, [Problem("", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: tuple[str | int, ...], lines: dict[str, int], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = key_path((*path, key))
                raise ConfigError(
                    file, [Problem(where, f"given twice (first on line {seen[key]})", line)]
                )
            seen[key] = line
            lines[key_path((*path, key))] = line
            _walk(value_node, (*path, key), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[key_path((*path, index))] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, file)
