"""ConfigError: everything wrong with a berth.yaml, said in a few lines a person can act on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from berth.errors import BerthError

# More than this many problems at once is noise: the first ones are usually the cause.
MAX_SHOWN = 8


class LineError(ValueError):
    """A bad line in a small config file of its own; ``str()`` reads ``FILE:LINE: message``."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (``limits.memory``, line 12) and what was expected."""

    key_path: str
    message: str
    line: int | None = None

    def format(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(BerthError):
    """A berth.yaml that cannot be used; ``str()`` is the message for the operator.

    ``file``, ``key_path`` and ``message`` describe the first problem (what callers and tests
    usually look at); ``problems`` holds all of them.
    """

    def __init__(self, file: str | Path | None, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.file = str(file) if file is not None else "berth.yaml"
        self.problems = problems
        self.key_path = problems[0].key_path
        self.message = problems[0].message
        lines = [p.format(self.file) for p in problems[:MAX_SHOWN]]
        if len(problems) > MAX_SHOWN:
            lines.append(f"... and {len(problems) - MAX_SHOWN} more problem(s)")
        super().__init__("\n".join(lines))

    @classmethod
    def single(
        cls, file: str | Path | None, key_path: str, message: str, line: int | None = None
    ) -> ConfigError:
        return cls(file, [Problem(key_path, message, line)])
