"""Run jupyter/docker-stacks' own foundation tests, unmodified, against a Berth image.

Berth's images claim to behave like docker-stacks' (start.sh, run-hooks.sh, log lines, user
switching). docker-stacks' test suite for its foundation image is the reference: this runner takes
their source tree (a git repository holding PINNED_COMMIT: a clone, or a bare mirror), extracts
`tests/` at that commit into a temporary directory, tags the image under test with the name their
fixtures build (`docker.io/<owner>/docker-stacks-foundation`), and runs their pytest there with
their conftest and helpers. Tests that are about conda or mamba, or that assert on conda's
directory, are deselected by node id with the reason in DESELECTED (and, on one engine only, the
few the engine itself decides, ENGINE_DESELECTED). Nothing of docker-stacks is
kept in this repository, and a run downloads nothing: the source comes from a path (`--fetch`, an
install step that `scripts/setup.sh --test` runs, fetches the pinned commit when no copy is here).

    python tests/conformance/docker_stacks.py [--image berth/foundation:latest] [--src PATH]

The source: --src, else BERTH_DOCKER_STACKS_SRC, else DEFAULT_SOURCES (a local mirror, where one
exists). Outside such a machine:

    git clone https://github.com/jupyter/docker-stacks
    git -C docker-stacks checkout 8209386950497966c8a9aa446b9a84a5dd78eab5   # PINNED_COMMIT
    BERTH_DOCKER_STACKS_SRC=$PWD/docker-stacks scripts/conformance.sh

Their tests need pytest, docker, requests and tabulate (imported by their conda helper at
collection), plus pytest-xdist and pytest-rerunfailures as their own runner uses them: all in
Berth's `test` extra. Exit status: pytest's (0 when every selected test passed); 3 when the source
or the image is missing or the deselection list names a test their suite no longer has.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from berth.engine_kind import PODMAN, engine_kind

# jupyter/docker-stacks main, 2026-08-08 ("Remove docker/setup-docker-action usage (#2549)").
# Moving the pin: update it here and in docs/images.md, run the suite, revisit DESELECTED.
PINNED_COMMIT = "8209386950497966c8a9aa446b9a84a5dd78eab5"
SOURCE_ENV = "BERTH_DOCKER_STACKS_SRC"
UPSTREAM = "https://github.com/jupyter/docker-stacks"
# Where `--fetch` (run by `scripts/setup.sh --test`) keeps the pinned commit: a bare repository.
FETCHED = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "berth/docker-stacks.git"
)
# Where a copy is kept: the project's machines' local mirror, then what --fetch put in the cache.
DEFAULT_SOURCES = (Path("/work/.mirror/jupyter+docker-stacks/repo"), FETCHED)
SUITE = "tests/by_image/docker-stacks-foundation"
# Node ids as their pytest names them: relative to its rootdir, their tests/ (tests/pytest.ini).
NODES = "by_image/docker-stacks-foundation"
THEIR_IMAGE_NAME = "docker-stacks-foundation"  # their test_units looks its directory up by it

_CONDA = "conda and mamba are not in Berth's images (Python is a venv at /opt/venv, pip installs)"
_CONDA_DIR = (
    "asserts on /opt/conda, docker-stacks' conda environment; Berth's environment is the venv "
    "/opt/venv, where the same behaviour is tested by tests/integration/test_image_docker_stacks.py"
)
# node id (relative to their repository root) -> why it is not run against Berth.
DESELECTED: dict[str, str] = {
    f"{NODES}/test_package_managers.py::test_package_manager[conda]": _CONDA,
    f"{NODES}/test_package_managers.py::test_package_manager[mamba]": _CONDA,
    f"{NODES}/test_outdated.py::test_outdated_packages[True]": (
        f"{_CONDA}; also an informational test their own runner deselects (-m 'not info')"
    ),
    f"{NODES}/test_outdated.py::test_outdated_packages[False]": (
        f"{_CONDA}; also an informational test their own runner deselects (-m 'not info')"
    ),
    f"{NODES}/test_packages.py::test_python_packages": (
        f"{_CONDA}: lists the packages with `mamba env export`"
    ),
    f"{NODES}/test_packages.py::test_r_packages": (
        f"{_CONDA}: lists the packages with `mamba env export`"
    ),
    f"{NODES}/test_python_version.py::test_python_pinned_version": (
        f"{_CONDA}: reads conda's pin file /opt/conda/conda-meta/pinned"
    ),
    f"{NODES}/test_python_version.py::test_python_version": (
        "expects conda's Python 3.13; Berth's Python is Debian bookworm's python3 (3.11), "
        "the interpreter of the OS the images are built from (docs/images.md)"
    ),
    f"{NODES}/test_user_options.py::test_uid_change": f"{_CONDA_DIR} (touch /opt/conda/test-file)",
    f"{NODES}/test_user_options.py::test_chown_extra": f"{_CONDA_DIR} (CHOWN_EXTRA=/opt/conda/bin)",
    f"{NODES}/test_user_options.py::test_sudo_path": (
        f"{_CONDA_DIR} (sudo finds /opt/conda/bin/jupyter; the foundation has no jupyter either)"
    ),
    f"{NODES}/test_user_options.py::test_sudo_path_without_grant": (
        f"{_CONDA_DIR} (/opt/conda/bin/jupyter; the foundation has no jupyter either)"
    ),
    f"{NODES}/test_user_options.py::test_conda_dir_group_inheritance": (
        f"{_CONDA_DIR} (setgid group inheritance in /opt/conda)"
    ),
}

# Deselected only where the engine itself makes the difference, by engine (berth.engine_kind's
# names); docs/podman.md shows each. Podman (its default --passwd) writes "UID:*:UID:GID:container
# user:WORKDIR:/bin/sh" into /etc/passwd and "GID:x:GID:UID" into /etc/group, both root:root 644,
# for a numeric --user the image does not know, before the entrypoint runs: `id` then names uid
# and gid after themselves, which no process of that user can undo (plain Debian, no entrypoint:
# `--user 1010:1010 --group-add users id` says `uid=1010(1010) gid=1010(1010)
# groups=1010(1010),100(users)` on Podman 4.3, `uid=1010 gid=1010 groups=1010,100(users)` on
# Docker). The rest of that test (one warning, docker-stacks' "Try setting gid=0") is checked on
# both engines by tests/integration/test_image_docker_stacks.py.
ENGINE_DESELECTED: dict[str, dict[str, str]] = {
    PODMAN: {
        f"{NODES}/test_user_options.py::test_group_add": (
            "expects `id` to print uid=1010 gid=1010 without names; Podman names them 1010 in "
            "/etc/passwd and /etc/group itself (root-owned, 644) before start.sh runs"
        ),
    },
}


class SetupError(Exception):
    """The run cannot start: no source, no image, or a stale deselection list."""


@dataclass
class Outcome:
    exit_status: int
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deselected: dict[str, str] = field(default_factory=dict)
    collected: int = 0
    reruns: int = 0  # attempts repeated by --reruns (a test that passed on a rerun counts once)
    seconds: float = 0.0
    output: str = ""  # their pytest's output, when not streamed

    def summary(self) -> str:
        return (
            f"docker-stacks {PINNED_COMMIT[:12]} foundation tests: {len(self.passed)} passed, "
            f"{len(self.failed)} failed, {len(self.skipped)} skipped, "
            f"{len(self.deselected)} deselected, {self.reruns} reruns ({self.seconds:.0f} s)"
        )


def _holds_pin(source: Path) -> bool:
    probe = ["git", "-C", str(source), "cat-file", "-e", f"{PINNED_COMMIT}^{{commit}}"]
    return source.exists() and subprocess.run(probe, capture_output=True).returncode == 0


def fetch_source() -> Path:
    """The pinned commit alone, fetched from GitHub into FETCHED unless a source holds it already.

    This is an install step (`scripts/setup.sh --test`), never run by a test: the tests read the
    source from a path and download nothing."""
    if os.environ.get(SOURCE_ENV) or any(_holds_pin(p) for p in DEFAULT_SOURCES):
        return find_source()
    FETCHED.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(FETCHED)]
    steps = (
        [*git, "init", "-q", "--bare"],
        [*git, "fetch", "-q", "--depth", "1", UPSTREAM, PINNED_COMMIT],
    )
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise SetupError(f"{' '.join(step[3:])} took over 10 minutes") from None
        if done.returncode != 0:
            raise SetupError(f"{' '.join(step[3:])} failed: {done.stderr.strip()}")
    return find_source()


def find_source(explicit: str | None = None) -> Path:
    """The docker-stacks git repository to read: argument, environment, or a local mirror."""
    candidates = [Path(explicit)] if explicit else []
    if not candidates and os.environ.get(SOURCE_ENV):
        candidates = [Path(os.environ[SOURCE_ENV])]
    if not candidates:
        candidates = [p for p in DEFAULT_SOURCES if _holds_pin(p)]
    if not candidates:
        raise SetupError(
            f"no docker-stacks source: set {SOURCE_ENV} to a clone of "
            f"https://github.com/jupyter/docker-stacks holding commit {PINNED_COMMIT}"
        )
    source = candidates[0]
    probe = subprocess.run(
        ["git", "-C", str(source), "cat-file", "-e", f"{PINNED_COMMIT}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise SetupError(
            f"{source} is not a docker-stacks git repository holding commit {PINNED_COMMIT} "
            f"(git: {probe.stderr.strip() or probe.returncode}); `git fetch` it, or clone anew"
        )
    return source


def extract_tests(source: Path, into: Path) -> Path:
    """Their `tests/` at PINNED_COMMIT, as files (modes kept: hooks' executable bits matter)."""
    archive = subprocess.run(
        ["git", "-C", str(source), "archive", "--format=tar", PINNED_COMMIT, "tests"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="tar")
    return into


def _node_ids(junit: Path) -> tuple[list[str], list[str], list[str], int]:
    """(passed, failed, skipped, reruns) from pytest's JUnit XML.

    With reruns a test has one entry per attempt; the attempts that were rerun are empty
    entries, so a test failed when any of its entries holds a failure or an error.
    """
    outcomes: dict[str, str] = {}
    entries = 0
    for case in ET.parse(junit).iter("testcase"):
        entries += 1
        path = case.get("classname", "").replace(".", "/")
        node = f"{path}.py::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[node] = "failed"
        elif case.find("skipped") is not None and outcomes.get(node) != "failed":
            outcomes[node] = "skipped"
        else:
            outcomes.setdefault(node, "passed")
    by_outcome: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": []}
    for node, outcome in outcomes.items():
        by_outcome[outcome].append(node)
    reruns = entries - len(outcomes)
    return by_outcome["passed"], by_outcome["failed"], by_outcome["skipped"], reruns


def _pytest(tree: Path, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    # Their suite with their conftest, and only the plugins their runner uses: the entry-point
    # plugins of this environment (Berth's own test plugins) stay out.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=tree, env=env, text=True, **kwargs)  # type: ignore[call-overload]


def collected(tree: Path, options: list[str]) -> list[str]:
    result = _pytest(tree, ["--collect-only", "-q", SUITE, *options], capture_output=True)
    if result.returncode != 0:
        raise SetupError(f"their suite does not collect:\n{result.stdout}\n{result.stderr}")
    return [line for line in result.stdout.splitlines() if "::" in line]


def engine_name() -> str:
    """The engine of DOCKER_HOST: "docker" or "podman" (berth.engine_kind)."""
    import docker

    client = docker.from_env()
    try:
        return engine_kind(client)
    finally:
        client.close()


def deselection(engine: str) -> dict[str, str]:
    """node id -> reason: what is not run against Berth on `engine`."""
    return {**DESELECTED, **ENGINE_DESELECTED.get(engine, {})}


def tag_image(image: str, owner: str) -> str:
    """Tag `image` as <owner>/docker-stacks-foundation:latest, the name their fixtures run."""
    import docker

    client = docker.from_env()
    try:
        found = client.images.get(image)
        repository = f"{owner}/{THEIR_IMAGE_NAME}"
        found.tag(repository, "latest")
    except docker.errors.ImageNotFound as error:
        raise SetupError(f"image {image} is not built (berth images build foundation)") from error
    finally:
        client.close()
    return f"{repository}:latest"


def untag_image(tag: str) -> None:
    import docker

    client = docker.from_env()
    try:
        # The tag only: the image keeps its own names.
        client.images.remove(tag, noprune=True)
    finally:
        client.close()


def run(
    image: str,
    source: Path,
    *,
    workers: int = 2,
    reruns: int = 2,
    stream: bool = True,
) -> Outcome:
    """Run their foundation suite against `image`; the outcome per node id."""
    import time

    engine = engine_name()

    owner = f"berth-conformance-{os.getpid()}"
    tag = tag_image(image, owner)
    work = Path(tempfile.mkdtemp(prefix="berth-conformance-"))
    os.chmod(work, 0o755)  # their bind mounts are read in containers by uid 1000
    try:
        tree = extract_tests(source, work)
        options = ["--registry", "docker.io", "--owner", owner, "--image", THEIR_IMAGE_NAME]
        node_ids = collected(tree, options)
        named = set(DESELECTED).union(*ENGINE_DESELECTED.values())
        stale = sorted(named - set(node_ids))
        if stale:
            raise SetupError(
                "DESELECTED or ENGINE_DESELECTED names tests their suite at this commit does not "
                "have: " + ", ".join(stale)
            )
        deselected = deselection(engine)
        junit = work / "junit.xml"
        args = [SUITE, *options, f"--junitxml={junit}", "-o", "log_cli=false", "--color=no"]
        args += ["-o", "junit_family=xunit1"]
        if workers > 1:
            args += ["-p", "xdist", "--numprocesses", str(workers)]
        if reruns > 0:
            # Their tests wait 10 s for a container; a loaded engine can be slower than that once.
            args += ["-p", "pytest_rerunfailures", "--reruns", str(reruns)]
        for node in deselected:
            args += ["--deselect", node]
        started = time.monotonic()
        result = _pytest(tree, args, **({} if stream else {"capture_output": True}))
        seconds = time.monotonic() - started
        if not junit.exists():
            raise SetupError(f"their pytest wrote no report (exit status {result.returncode})")
        passed, failed, skipped, reruns_done = _node_ids(junit)
        return Outcome(
            result.returncode,
            passed,
            failed,
            skipped,
            deselected,
            collected=len(node_ids),
            reruns=reruns_done,
            seconds=seconds,
            output=(result.stdout or "") + (result.stderr or ""),
        )
    finally:
        untag_image(tag)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="berth/foundation:latest", help="image under test")
    parser.add_argument("--src", help=f"docker-stacks git repository (default: ${SOURCE_ENV})")
    parser.add_argument("--workers", type=int, default=2, help="parallel pytest workers")
    parser.add_argument("--reruns", type=int, default=2, help="reruns of a failing test")
    parser.add_argument(
        "--fetch", action="store_true", help=f"only fetch the pinned commit into {FETCHED}"
    )
    args = parser.parse_args(argv)
    try:
        if args.fetch:
            print(f"conformance: docker-stacks {PINNED_COMMIT[:12]} in {fetch_source()}")
            return 0
        outcome = run(args.image, find_source(args.src), workers=args.workers, reruns=args.reruns)
    except SetupError as error:
        print(f"conformance: {error}", file=sys.stderr)
        return 3
    print("\nDeselected (docs/images.md, 'docker-stacks conformance'):")
    for node, reason in outcome.deselected.items():
        print(f"  {re.sub(r'^.*/', '', node)}: {reason}")
    print(outcome.summary())
    return outcome.exit_status


if __name__ == "__main__":
    sys.exit(main())
