"""base-notebook's berth_server_start.py (a server's start without repeated work), in-process:
the regular expressions it hands out behave as ``re`` compiles them, and every change to the
interpreter's state is undone by ``resume``."""

from __future__ import annotations

import gc
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from re import _compiler  # type: ignore[attr-defined]
from types import ModuleType
from typing import Any

import pytest

MODULE = (
    Path(__file__).resolve().parents[2] / "berth/images/stack/base-notebook/berth_server_start.py"
)
SAMPLES: list[tuple[str | bytes, int]] = [
    (r"(?P<user>[^/]+)/(?P<server>[^/]*)$", 0),
    (r"^/user/[^/]+/api/(kernels|sessions)(/.*)?$", re.IGNORECASE),
    (
        r"""(?x) \d+ # digits
        (?:\.\d+)?""",
        0,
    ),
    (r"(?<=ab)c|(?<!x)y{2,5}?", re.MULTILINE | re.DOTALL),
    (r"[\u00e9-\u00ff]+\b", 0),
    (rb"^GET (\S+) HTTP/1\.[01]\r\n", 0),
    (r"(a)(?(1)b|c)", re.ASCII),
]
SUBJECTS = ["alice/lab", "/USER/bob/api/kernels/1", "12.5 x", "abc yyy", "été", "a", "ab"]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("berth_server_start_under_test", MODULE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    thresholds = gc.get_threshold()
    try:
        yield module
    finally:
        module.resume()
        gc.set_threshold(*thresholds)
        re.purge()


def fingerprint(pattern: Any, subjects: list[Any]) -> tuple[Any, ...]:
    found = []
    for subject in subjects:
        match = pattern.search(subject)
        found.append(None if match is None else (match.span(), match.groups()))
    return pattern.pattern, pattern.flags, pattern.groups, dict(pattern.groupindex), found


def subjects_for(pattern: str | bytes) -> list[Any]:
    if isinstance(pattern, bytes):
        return [b"GET /x HTTP/1.1\r\n", b"POST / HTTP/1.1\r\n"]
    return SUBJECTS


def test_cached_patterns_behave_as_re_compiles_them(start: ModuleType, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    assert start.write_cache(cache, set(SAMPLES)) == len(SAMPLES)
    expected = [fingerprint(_compiler.compile(p, f), subjects_for(p)) for p, f in SAMPLES]
    re.purge()
    start.pause(cache)
    got = [fingerprint(re.compile(p, f), subjects_for(p)) for p, f in SAMPLES]
    assert start.hits == len(SAMPLES)  # all from the cache: none compiled again
    assert got == expected


def test_a_pattern_not_in_the_cache_is_compiled_as_usual(start: ModuleType, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    start.write_cache(cache, {("abc", 0)})
    start.pause(cache)
    assert re.compile("abc", re.IGNORECASE).match("ABC")  # other flags: another entry
    assert start.hits == 0
    with pytest.raises(re.error):
        re.compile("(unclosed")


def test_resume_puts_everything_back(start: ModuleType, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    start.write_cache(cache, set(SAMPLES))
    before_threshold, before_compile = gc.get_threshold(), _compiler.compile
    start.pause(cache)
    assert gc.get_threshold() == start.PAUSED_THRESHOLD
    assert _compiler.compile is start._compile_cached
    start.resume()
    assert (gc.get_threshold(), _compiler.compile) == (before_threshold, before_compile)
    assert start.paused is None and start._cache is None
    start.resume()  # twice is harmless (the config may be loaded more than once)
    assert gc.get_threshold() == before_threshold
    start._latest.join(5)  # the timer that would resume at the latest ends at once
    assert not start._latest.is_alive()


def test_the_pause_ends_at_the_latest_without_resume(start: ModuleType, tmp_path: Path) -> None:
    """An image whose config never calls resume still gets Python's own behaviour back."""
    cache = str(tmp_path / "cache")
    start.write_cache(cache, set(SAMPLES))
    start.pause(cache, latest=0.05)
    assert start.paused is not None
    start._latest.join(5)
    assert start.paused is None
    assert _compiler.compile is not start._compile_cached
    assert gc.get_threshold() != start.PAUSED_THRESHOLD


def test_a_cache_of_another_interpreter_is_ignored(start: ModuleType, tmp_path: Path) -> None:
    import marshal

    cache = tmp_path / "cache"
    start.write_cache(str(cache), set(SAMPLES))
    data = marshal.loads(cache.read_bytes())
    data["interpreter"] = "3.11.0 (another build)"
    cache.write_bytes(marshal.dumps(data))
    assert start.load_cache(str(cache)) is None
    cache.write_bytes(b"not marshal data")
    assert start.load_cache(str(cache)) is None
    assert start.load_cache(str(tmp_path / "missing")) is None
    start.pause(str(cache))
    assert _compiler.compile is not start._compile_cached  # nothing to take: re untouched


@pytest.mark.parametrize(
    ("argv", "server"),
    [
        (["/opt/venv/bin/jupyterhub-singleuser", "--debug"], True),
        (["/opt/venv/bin/jupyter-lab"], True),
        (["/opt/venv/bin/jupyter-server"], True),
        (["/opt/venv/bin/jupyter-notebook"], True),
        (["/opt/venv/lib/python3.11/site-packages/ipykernel_launcher.py", "-f", "k.json"], False),
        (["/opt/venv/bin/jupyter"], False),  # execs jupyter-lab, which pauses itself
        (["-c"], False),
        ([""], False),
        ([], False),
    ],
)
def test_only_a_server_start_pauses(start: ModuleType, argv: list[str], server: bool) -> None:
    assert start.is_server(argv) is server


def test_this_interpreter_itself_is_not_paused(start: ModuleType) -> None:
    """pytest is no server: importing the module changed nothing."""
    assert start.paused is None
    assert gc.get_threshold() != start.PAUSED_THRESHOLD
