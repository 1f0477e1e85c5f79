"""base-notebook's build-time gzip copies (precompress_static.py) and the Accept-Encoding rule
of the handler that serves them (berth_static_gzip.py), on files in a temporary directory."""

from __future__ import annotations

import gzip
import importlib.util
import os
import sys
import types
from pathlib import Path
from types import ModuleType

import pytest

STACK = Path(__file__).resolve().parents[2] / "berth/images/stack/base-notebook"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, STACK / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


precompress = load("precompress_static")


@pytest.fixture
def handler_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """berth_static_gzip with a stand-in base class (jupyter_server is not installed here)."""
    handlers = types.ModuleType("jupyter_server.base.handlers")
    handlers.FileFindHandler = object  # type: ignore[attr-defined]
    for name in ("jupyter_server", "jupyter_server.base"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "jupyter_server.base.handlers", handlers)
    return load("berth_static_gzip")


def script(size: int) -> bytes:
    return b"".join(b"function f%d(){return %d}\n" % (i, i) for i in range(size // 24))


def test_copies_decompress_to_their_files_with_the_same_time(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    files = {
        "main.abc.js": script(50_000),
        "sub/style.css": b".jp-x{color:red}\n" * 400,
        "tiny.js": b"f()\n",  # under 1 KiB: not worth a copy
        "random.json": os.urandom(4000),  # incompressible: no copy
        "font.woff2": b"w" * 5000,  # not a compressible type
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    os.utime(tmp_path / "main.abc.js", ns=(1_000_000_000, 1_234_567_890_123_456_789))
    count, plain, packed = precompress.write_copies(tmp_path)
    copies = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.gz"))
    assert copies == ["main.abc.js.gz", "sub/style.css.gz"]
    assert (count, plain) == (2, len(files["main.abc.js"]) + len(files["sub/style.css"]))
    for name in ("main.abc.js", "sub/style.css"):
        copy = tmp_path / f"{name}.gz"
        assert gzip.decompress(copy.read_bytes()) == files[name]
        assert copy.stat().st_mtime_ns == (tmp_path / name).stat().st_mtime_ns
    assert packed == sum((tmp_path / c).stat().st_size for c in copies)


def test_a_rebuild_replaces_a_stale_copy_with_the_same_bytes(tmp_path: Path) -> None:
    """A copy left from older bytes would serve old code: the build writes every copy again
    from the final file, and gzip's header carries no time, so the bytes repeat."""
    source = tmp_path / "main.js"
    source.write_bytes(script(20_000))
    precompress.write_copies(tmp_path)
    first = (tmp_path / "main.js.gz").read_bytes()
    (tmp_path / "main.js.gz").write_bytes(gzip.compress(b"old code " * 500))
    precompress.write_copies(tmp_path)
    assert (tmp_path / "main.js.gz").read_bytes() == first


def test_hard_linked_files_get_one_hard_linked_copy(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.js").write_bytes(script(20_000))
    os.link(tmp_path / "a" / "x.js", tmp_path / "b" / "x.js")
    assert precompress.write_copies(tmp_path)[0] == 1
    assert (tmp_path / "a" / "x.js.gz").stat().st_ino == (tmp_path / "b" / "x.js.gz").stat().st_ino


def test_links_are_neither_followed_nor_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.js").write_bytes(script(20_000))
    static = tmp_path / "static"
    static.mkdir()
    (static / "linked.js").symlink_to(outside / "secret.js")
    (static / "main.js").write_bytes(script(20_000))
    victim = outside / "victim"
    victim.write_bytes(b"keep me")
    (static / "main.js.gz").symlink_to(victim)
    assert precompress.write_copies(static)[0] == 1
    assert not (static / "linked.js.gz").exists()
    assert not (static / "main.js.gz").is_symlink()
    assert victim.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=nonsense", False),
        ("deflate, br", False),
        ("", False),
        ("identity", False),
        ("notgzip, gzipped", False),
    ],
)
def test_gzip_is_sent_only_to_clients_that_accept_it(
    handler_module: ModuleType, header: str, accepted: bool
) -> None:
    assert handler_module.accepts_gzip(header) is accepted


def test_the_copies_cover_the_prebuilt_lab_extensions() -> None:
    """Fails on main before this change: /lab/extensions/ (the prebuilt extensions' remoteEntry
    and chunk files) had no copies and was gzipped on every request."""
    assert {prefix: root.relative_to(precompress.VENV).as_posix()
            for prefix, root in precompress.STATIC_DIRS.items()
            if prefix != "/static/notebook/"} == {
        "/static/lab/": "share/jupyter/lab/static",
        "/lab/extensions/": "share/jupyter/labextensions",
    }  # fmt: skip


def lab_handlers(monkeypatch: pytest.MonkeyPatch, file_find_handler: type) -> ModuleType:
    """A stand-in jupyterlab_server.handlers naming `file_find_handler` for its routes."""
    package = types.ModuleType("jupyterlab_server")
    handlers = types.ModuleType("jupyterlab_server.handlers")
    handlers.FileFindHandler = file_find_handler  # type: ignore[attr-defined]
    package.handlers = handlers  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jupyterlab_server", package)
    monkeypatch.setitem(sys.modules, "jupyterlab_server.handlers", handlers)
    return handlers


def test_the_lab_extensions_route_gets_the_same_handler(
    handler_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers = lab_handlers(monkeypatch, handler_module.FileFindHandler)
    assert handler_module.serve_lab_extensions() is True
    assert handlers.FileFindHandler is handler_module.PrecompressedFileHandler


def test_a_lab_extensions_handler_replaced_by_someone_else_is_left_alone(
    handler_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    class TheirOwn:
        pass

    handlers = lab_handlers(monkeypatch, TheirOwn)
    assert handler_module.serve_lab_extensions() is False
    assert handlers.FileFindHandler is TheirOwn


def test_without_jupyterlab_nothing_is_replaced(
    handler_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jupyterlab_server", None)  # import fails
    assert handler_module.serve_lab_extensions() is False
