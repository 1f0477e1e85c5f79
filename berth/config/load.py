"""Load berth.yaml: read, validate against the schema, resolve the files it names.

Every failure is one ConfigError naming the file, the key path and what was expected, e.g.
``berth.yaml:12: limits.memory: expected an integer number of bytes or ... (got '2GB')``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from berth.config.errors import ConfigError, Problem
from berth.config.fields import FieldProblem, describe
from berth.config.keys import model_in
from berth.config.resolve import ResolveError, resolve_config
from berth.config.schema import BerthConfig
from berth.config.yamlsource import key_path, parse_yaml

DEFAULT_CONFIG_NAME = "berth.yaml"
# Keys whose values must never appear in a message.
_SECRET_KEYS = frozenset({"client_secret", "token", "db_url"})


def load_config(
    path: str | Path,
    *,
    missing_ok: bool = False,
    environ: Mapping[str, str] | None = None,
) -> BerthConfig:
    """Load and resolve ``path``; with ``missing_ok``, a missing file means all defaults.

    ``missing_ok`` is for the CLI's default path only: a path the operator typed must exist.
    ``environ`` (default: the process environment, read now) supplies OAuth credentials.
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return BerthConfig()
        raise ConfigError.single(file, "", "file not found") from None
    except UnicodeDecodeError:
        raise ConfigError.single(file, "", "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError.single(file, "", f"cannot read: {exc.strerror}") from None
    data, lines = parse_yaml(text, file)
    cfg = config_from_data({} if data is None else data, file=file, lines=lines)
    try:
        return resolve_config(cfg, path.parent, os.environ if environ is None else environ)
    except ResolveError as exc:
        raise ConfigError(file, [_with_line(p, lines) for p in exc.problems]) from None
    except ValidationError as exc:  # a value that came from the environment or a file
        raise ConfigError(file, _problems(exc, lines)) from None


def config_from_data(
    data: Any, *, file: str | None = None, lines: Mapping[str, int] | None = None
) -> BerthConfig:
    """Validate parsed YAML (no file access); errors as ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError.single(
            file,
            "",
            f"expected a mapping of settings (key: value) at the top level, got {describe(data)}",
        )
    if (found := _key_not_text(data)) is not None:
        path, key = found
        problem = Problem(
            key_path(path),
            f"the key {describe(key)} is not text: quote it (YAML reads unquoted numbers, "
            "dates, true/false/yes/no and null/~ as values of other types)",
        )
        raise ConfigError(file, [_with_line(problem, lines or {})])
    try:
        return BerthConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(file, _problems(exc, lines or {}, data)) from None


def _key_not_text(data: Any) -> tuple[tuple[str | int, ...], Any] | None:
    """The first mapping key that YAML did not read as a string, and where it is."""
    todo: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    seen: set[int] = set()  # aliases share objects, and may contain themselves
    while todo:
        path, node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    return path, key
                todo.append(((*path, key), value))
        elif isinstance(node, list):
            todo.extend(((*path, index), item) for index, item in enumerate(node))
    return None


def _key_steps(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """The location of an error as keys of ``data``, without pydantic's union-arm labels.

    A union adds its arm's type as a step ("list[str]"); it is dropped unless ``data`` really
    has a key of that name there (an operator may write any key, ``[/x]`` included).
    """
    steps: list[Any] = []
    node = data
    for step in loc:
        is_key = isinstance(node, dict) and step in node
        is_index = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if is_key or is_index:
            node = node[step]
        elif isinstance(step, str) and "[" in step:
            continue
        else:
            node = None
        steps.append(step)
    return tuple(steps)


def _problems(exc: ValidationError, lines: Mapping[str, int], data: Any = None) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = _key_steps(tuple(error["loc"]), data)
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblem):
            loc = (*loc, *(int(k) if k.isdigit() else k for k in cause.key.split(".") if k))
        problem = _with_line(Problem(key_path(loc), _message(error, loc, cause)), lines)
        if problem not in problems:
            problems.append(problem)
    return problems


def _with_line(problem: Problem, lines: Mapping[str, int]) -> Problem:
    key = problem.key_path
    while key and key not in lines:  # a missing key: point at its parent
        key = key.rpartition(".")[0] if "." in key else ""
    return Problem(problem.key_path, problem.message, lines.get(key))


def _message(error: Any, loc: tuple[Any, ...], cause: Exception | None) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    names = [p for p in loc if isinstance(p, str)]
    secret = bool(set(names) & _SECRET_KEYS)
    got = "" if secret or isinstance(value, dict | list) else f", got {describe(value)}"
    if cause is not None:
        return str(getattr(cause, "message", cause))
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}{got}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()))
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        return f"must be {words} {bound}{got}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "string_too_short":
        return "cannot be empty"
    expected = {
        "int_parsing": "an integer",
        "int_type": "an integer",
        "int_from_float": "an integer",
        "float_parsing": "a number",
        "float_type": "a number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a mapping (key: value)",
        "model_type": "a mapping (key: value)",
        "model_attributes_type": "a mapping (key: value)",
        "path_type": "a file path",
    }.get(kind)
    if expected:
        return f"expected {expected}{got}"
    return f"{error['msg']}{got}"


def _unknown_key(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "unknown key"
    model: type[BaseModel] | None = BerthConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = model_in(field.annotation) if field else None
    bad = str(loc[-1])
    if model is None:
        return f"unknown key {bad!r}"
    known = list(model.model_fields)
    close = difflib.get_close_matches(bad, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {bad!r} ({hint}known keys here: {', '.join(known)})"
