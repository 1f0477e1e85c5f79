"""The CLI's message stream: stderr, never hard-wrapped (paths and URLs stay whole when copied)."""

from rich.console import Console

console = Console(stderr=True, soft_wrap=True)
