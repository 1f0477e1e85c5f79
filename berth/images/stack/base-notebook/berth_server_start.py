"""A Jupyter server's start without the work Python repeats at every start (base-notebook).

Imported by ``berth_server_start.pth`` in the venv's site-packages at every Python start; it
does something only in a Jupyter server's process (jupyterhub-singleuser, jupyter-lab,
jupyter-server, jupyter-notebook), and only until the server runs (``resume``, called by
/etc/jupyter/jupyter_server_config.py at the first turn of the server's event loop, or after
RESUME_AT_THE_LATEST seconds):

- the cyclic garbage collector's young generation waits for 50,000 new objects instead of 700
  while ~1,100 modules are imported: every collection walks objects that all survive (module
  dicts, classes, functions), ~10 % of the imports' CPU (docs/images.md). It still runs (a
  start that never resumes keeps a bounded heap), and ``resume`` puts the thresholds back;
- regular expressions compiled at start (~320 patterns, mostly at import time) take their
  compiled code from REGEX_CACHE, written at build time by slim_venv.py from the patterns a
  recorded start compiled: Python's ``re`` parses and compiles each pattern in pure Python at
  every start (~35-40 ms of CPU). A pattern found there is given to ``_sre.compile`` with the
  code ``re`` itself produced for it at build time, by this very interpreter (the cache names
  the interpreter's version, ``_sre.MAGIC`` and ``CODESIZE``, and is ignored on any
  difference); any other pattern is compiled as usual. ``resume`` drops the cache (its memory
  is freed).

Standard library only, imported before anything else of the server: keep it small.
"""

from __future__ import annotations

import _sre  # type: ignore[import-not-found]
import gc
import marshal
import os
import sys
from typing import Any

SERVER_COMMANDS = frozenset(
    {"jupyterhub-singleuser", "jupyter-lab", "jupyter-server", "jupyter-notebook"}
)
REGEX_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "berth_server_start.regex")
# Young-generation threshold while paused (Python's default is 700): the imports of a start
# leave ~132,000 more tracked objects, so a few young collections instead of ~190, each of
# which also walked what the ones before had promoted, and no full one.
PAUSED_THRESHOLD = (50_000, 50, 100)
# Should the config that resumes never run (an image replacing /etc/jupyter's file), the pause
# ends after this long anyway (a start under heavy load may take over a minute).
RESUME_AT_THE_LATEST = 300.0

paused: tuple[int, int, int] | None = None  # the thresholds to put back, while paused
hits = 0  # patterns taken from the cache so far (tests read it)
_cache: dict[tuple[str | bytes, int], tuple[Any, ...]] | None = None
_compile_original: Any = None
_latest: Any = None  # the timer that resumes at the latest


def is_server(argv: list[str]) -> bool:
    """Whether this process is a Jupyter server's start (the script Python was asked to run)."""
    return bool(argv) and os.path.basename(argv[0]) in SERVER_COMMANDS


def interpreter_tag() -> str:
    return f"{sys.version}|{sys.hexversion}|{_sre.MAGIC}|{_sre.CODESIZE}"


def regex_entry(pattern: str | bytes, flags: int) -> tuple[Any, ...]:
    """What ``re._compiler.compile`` passes to ``_sre.compile`` for this pattern (build time)."""
    from re import _compiler, _parser  # type: ignore[attr-defined]

    parsed = _parser.parse(pattern, flags)
    # As bytes (SRE_CODE words): one block each, which goes back to the system when the cache
    # is dropped, where lists of ints would leave their memory scattered in Python's heap.
    code = memoryview(bytearray(4 * len(words := _compiler._code(parsed, flags)))).cast("I")
    for index, word in enumerate(words):
        code[index] = word
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    final_flags = int(flags | parsed.state.flags)
    return (final_flags, code.tobytes(), parsed.state.groups - 1, groupindex, tuple(indexgroup))


def write_cache(path: str, patterns: set[tuple[str | bytes, int]]) -> int:
    """Write the cache for these (pattern, flags); returns how many entries it holds."""
    entries = {}
    for pattern, flags in patterns:
        try:
            entries[pattern, int(flags)] = regex_entry(pattern, int(flags))
        except Exception:  # a pattern re refuses is compiled (and refused) at start as usual
            continue
    with open(path + ".tmp", "wb") as out:
        marshal.dump({"interpreter": interpreter_tag(), "entries": entries}, out)
    os.replace(path + ".tmp", path)
    return len(entries)


def load_cache(path: str) -> dict[tuple[str | bytes, int], tuple[Any, ...]] | None:
    try:
        with open(path, "rb") as source:
            data = marshal.load(source)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("interpreter") != interpreter_tag():
        return None
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else None


def _compile_cached(pattern: Any, flags: int = 0) -> Any:
    global hits
    cache = _cache
    if cache is not None and isinstance(pattern, (str, bytes)):
        entry = cache.get((pattern, flags))
        if entry is not None:
            hits += 1
            final_flags, code, groups, groupindex, indexgroup = entry
            words = memoryview(code).cast("I").tolist()
            return _sre.compile(pattern, final_flags, words, groups, groupindex, indexgroup)
    return _compile_original(pattern, flags)


def pause(cache_path: str = REGEX_CACHE, latest: float = RESUME_AT_THE_LATEST) -> None:
    """Collect less often and take compiled regular expressions from the cache, until resume
    (or ``latest`` seconds)."""
    global paused, _cache, _compile_original, _latest
    if paused is not None:
        return
    import threading  # the server imports it anyway

    _latest = threading.Timer(latest, resume)
    _latest.daemon = True
    _latest.start()
    paused = gc.get_threshold()
    gc.set_threshold(*PAUSED_THRESHOLD)
    _cache = load_cache(cache_path)
    if _cache is not None:
        from re import _compiler  # type: ignore[attr-defined]

        _compile_original = _compiler.compile
        _compiler.compile = _compile_cached


def resume() -> None:
    """Back to Python's own behaviour: the collector's thresholds, ``re`` compiling itself."""
    global paused, _cache
    if paused is None:
        return
    if _latest is not None:
        _latest.cancel()
    gc.set_threshold(*paused)
    paused = None
    if _compile_original is not None:
        from re import _compiler  # type: ignore[attr-defined]

        _compiler.compile = _compile_original
    _cache = None


if is_server(sys.argv):
    pause()
