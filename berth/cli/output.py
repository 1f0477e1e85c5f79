"""The CLI's message stream: stderr, never hard-wrapped (paths and URLs stay whole when copied);
and how image builds show there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from berth.images import provision
from berth.images.builder import BuildEvent, BuiltImage

console = Console(stderr=True, soft_wrap=True)


def say_dim(text: str) -> None:
    console.print(f"[dim]{text}[/]")


class BuildReporter:
    """Build progress: a bar per image on a terminal (images built side by side each have
    theirs), one line per step elsewhere (CI logs), each naming its image.

    With verbose, the build's own output is shown too.
    """

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.bar: Progress | None = None
        self.tasks: dict[str, TaskID] = {}  # the images being built, on the bar

    def __call__(self, event: BuildEvent) -> None:
        text = " ".join(event.text.split())  # fold the Dockerfile's line continuations
        text = text if len(text) <= 70 else text[:69] + "…"
        if event.kind == "start" and console.is_terminal:
            if self.bar is None:
                self.bar = Progress(
                    TextColumn("[bold]{task.fields[image]}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("{task.description}"),
                    console=console,
                    transient=True,
                )
                self.bar.start()
            self.tasks[event.image] = self.bar.add_task("", image=event.image, total=None)
        elif event.kind == "start":
            console.print(f"[bold]building {event.image}[/]")
        elif event.kind == "step" and self.bar is not None and event.image in self.tasks:
            self.bar.update(
                self.tasks[event.image],
                completed=event.step - 1,
                total=event.steps,
                description=escape(text),
            )
        elif event.kind == "step":
            console.print(
                f"  [cyan]{event.image}[/] {event.step}/{event.steps} {escape(text)}",
                highlight=False,
            )
        elif event.kind == "output" and self.verbose:
            # Images built side by side interleave their lines: each names its image.
            console.print(f"    {event.image}| {event.text}", highlight=False, markup=False)
        elif event.kind == "done":
            task = self.tasks.pop(event.image, None)
            if self.bar is not None and task is not None:
                self.bar.remove_task(task)
                if not self.tasks:
                    self.bar.stop()
                    self.bar = None
            console.print(f"  [green]✓ {event.image}[/] built in {event.text}")


@contextmanager
def build_progress(verbose: bool = False) -> Iterator[BuildReporter]:
    """A :class:`BuildReporter` whose bar is stopped however the build ends (a failed build
    must not leave the cursor hidden)."""
    reporter = BuildReporter(verbose)
    try:
        yield reporter
    finally:
        if reporter.bar is not None:
            reporter.bar.stop()


def print_built(built: list[BuiltImage]) -> None:
    for image in built:
        console.print(f"[green]{image.name}[/]: {', '.join(image.tags)}")


def stack_builder(client: docker.DockerClient, ca_bundle: Path | None) -> provision.Build:
    """Build images of the stack as `berth run` and `berth up` need them, showing progress."""

    def build(names: list[str]) -> None:
        with build_progress() as report:
            built = provision.build(client, names, ca_bundle=ca_bundle, report=report, say=say_dim)
        print_built(built)

    return build
