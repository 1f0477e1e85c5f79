"""docker_healthcheck.py: where it looks for the server, which one it picks, what it requests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = (
    Path(__file__).resolve().parents[2]
    / "berth"
    / "images"
    / "stack"
    / "base-notebook"
    / "docker_healthcheck.py"
)


@pytest.fixture(scope="module")
def hc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_healthcheck_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_server(directory: Path, pid: int, url: str, mtime: float | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"jpserver-{pid}.json"
    path.write_text(json.dumps({"pid": pid, "url": url, "hostname": "0.0.0.0"}))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_runtime_dirs_follow_jupyter_core_then_the_usual_homes(
    hc: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "home" / "alice").mkdir(parents=True)
    env = {
        "JUPYTER_RUNTIME_DIR": "/rt",
        "JUPYTER_DATA_DIR": "/data",
        "XDG_DATA_HOME": "/xdg",
        "HOME": "/home/jovyan",
        "NB_USER": "berthuser",
    }
    dirs = hc.runtime_dirs(env, home_globs=[str(tmp_path / "home" / "*")])
    runtime = Path(".local/share/jupyter/runtime")
    assert dirs[:5] == [
        Path("/rt"),
        Path("/data/runtime"),
        Path("/xdg/jupyter/runtime"),
        Path("/home/jovyan") / runtime,
        Path("/home/berthuser") / runtime,
    ]
    assert tmp_path / "home" / "alice" / runtime in dirs
    assert Path("/home/root") / runtime in dirs
    assert len(dirs) == len(set(dirs))


def test_find_server_skips_dead_and_broken_files_and_picks_the_newest(
    hc: ModuleType, tmp_path: Path
) -> None:
    live = os.getpid()
    write_server(tmp_path / "a", dead_pid(), "http://dead:1/", mtime=3000)
    write_server(tmp_path / "a", live, "http://old:1/", mtime=1000)
    write_server(tmp_path / "b", live, "http://new:1/", mtime=2000)
    (tmp_path / "b" / "jpserver-9.json").write_text("{not json")
    info = hc.find_server([tmp_path / "missing", tmp_path / "a", tmp_path / "b"])
    assert info["url"] == "http://new:1/"
    assert hc.find_server([tmp_path / "missing"]) is None


def test_api_urls_keep_the_base_url_and_try_loopback(hc: ModuleType) -> None:
    assert hc.api_urls({"url": "https://abc123:8888/base/"}) == [
        "https://abc123:8888/base/api",
        "https://127.0.0.1:8888/base/api",
    ]
    assert hc.api_urls({"url": "http://127.0.0.1:9999"}) == ["http://127.0.0.1:9999/api"]


@pytest.fixture
def jupyter_like_server() -> Iterator[tuple[str, list[str]]]:
    """Answers 200 on /base/api and 500 elsewhere; records the paths requested."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(200 if self.path == "/base/api" else 500)
            self.end_headers()
            self.wfile.write(b'{"version": "test"}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", paths
    finally:
        server.shutdown()
        server.server_close()


def test_main_is_healthy_when_the_api_answers(
    hc: ModuleType,
    tmp_path: Path,
    jupyter_like_server: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, paths = jupyter_like_server
    write_server(tmp_path, os.getpid(), root + "base/")
    monkeypatch.setattr(hc, "runtime_dirs", lambda env: [tmp_path])
    assert hc.main({}) == 0
    assert paths == ["/base/api"]
    assert capsys.readouterr().out.startswith("healthy")


def test_main_is_unhealthy_on_errors_or_without_server(
    hc: ModuleType,
    tmp_path: Path,
    jupyter_like_server: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(hc, "runtime_dirs", lambda env: [tmp_path])
    assert hc.main({}) == 1
    assert "no running Jupyter server" in capsys.readouterr().out
    root, _ = jupyter_like_server
    write_server(tmp_path, os.getpid(), root + "other/")
    assert hc.main({}) == 1
    assert "HTTP 500" in capsys.readouterr().out


def test_unix_socket_servers_are_not_checked(
    hc: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_server(tmp_path, os.getpid(), "http+unix://%2Ftmp%2Fjupyter.sock/")
    monkeypatch.setattr(hc, "runtime_dirs", lambda env: [tmp_path])
    assert hc.main({}) == 0


def test_script_imports_nothing_heavy() -> None:
    """The healthcheck runs every 3 s: it must stay on the standard library."""
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in "
        "('jupyter_core', 'jupyter_server', 'requests', 'traitlets', 'tornado')))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(SCRIPT)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("env", "uid", "expected"),
    [
        ({}, 0, (1000, 100)),
        ({"NB_UID": "1010", "NB_GID": "1020"}, 0, (1010, 1020)),
        ({"NB_UID": "0"}, 0, None),  # the operator asked for root
        ({"NB_UID": "x"}, 0, None),
        ({}, 1000, None),  # not root: nothing to drop
    ],
)
def test_root_drops_to_nb_uid(hc: ModuleType, env: dict, uid: int, expected: object) -> None:
    assert hc.unprivileged_ids(env, uid) == expected


def test_runs_isolated_without_site() -> None:
    """Fails on main before the change: the shebang had -I only, so site-packages (and their
    .pth files) were still processed."""
    assert SCRIPT.read_text().splitlines()[0] == "#!/usr/bin/python3 -IS"
    dockerfile = (SCRIPT.parent / "Dockerfile").read_text()
    command = '"/usr/bin/python3", "-I", "-S", "/usr/local/lib/berth/docker_healthcheck.py"'
    assert command in dockerfile
