"""Read YAML keeping line numbers, and refuse duplicate keys (PyYAML keeps the last silently)."""

from __future__ import annotations

from typing import Any

import yaml

from berth.config.errors import ConfigError, Problem


def key_path(parts: tuple[str | int, ...]) -> str:
    """``("services", 0, "token")`` -> ``services[0].token``: how errors name a key."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        # A key with a line break or other unprintable character is quoted, so that each
        # problem stays on one line that shows what was typed.
        shown = part if part.isprintable() and part.strip() == part and part else repr(part)
        text += f".{shown}" if text else shown
    return text


def parse_yaml(text: str, file: str) -> tuple[Any, dict[str, int]]:
    """Return the document and the 1-based line of every key path in it."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters right away (ReaderError)
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[str, int] = {}
        _walk(node, (), lines, file, set())
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        # The composer's context says what it expected ("expected a single document in the
        # stream"); its problem alone ("but found another document") reads as a fragment.
        what = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            what = f"{exc.context}, {exc.problem}"
        column = f", column {mark.column + 1}" if mark else ""
        raise ConfigError(file, [Problem("", f"not valid YAML: {what}{column}", line)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. NUL
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else "a character"
        raise ConfigError(
            file, [Problem("", f"not valid YAML: {char} is not allowed in YAML text", line)]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, [Problem("", f"not valid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(
            file, [Problem("", "not usable: nested too deeply (or an alias refers to itself)")]
        ) from None
    except ValueError as exc:  # a number of over 4300 digits, a date such as 2001-02-30
        reason = str(exc).split(";")[0]
        raise ConfigError(
            file, [Problem("", f"not valid YAML: a value cannot be read ({reason})")]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _walk(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[str, int],
    file: str,
    seen_nodes: set[int],
) -> None:
    # Each node is walked once: an alias shares its anchor's node, so walking it again would
    # loop forever on a recursive alias and take exponential time on nested ones ("billion
    # laughs"). Keys inside an alias then point at the anchor's lines, which is where they are.
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        _check_text(node, path, file)
    elif isinstance(node, yaml.MappingNode):
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
            _walk(key_node, path, lines, file, seen_nodes)  # a bad key: point at its parent
            _walk(value_node, (*path, key), lines, file, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[key_path((*path, index))] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, file, seen_nodes)


def _check_text(node: yaml.ScalarNode, path: tuple[str | int, ...], file: str) -> None:
    """Refuse a lone surrogate (from a "\\ud800" escape): no file, page or API can carry it."""
    value = node.value
    if isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value):
        line = node.start_mark.line + 1
        message = "contains a lone surrogate escape (\\ud800-\\udfff), which is not a character"
        raise ConfigError(file, [Problem(key_path(path), message, line)])
