"""The image's jupyter_server_config.py, run as traitlets would run it (with get_config())."""

from __future__ import annotations

import os
import runpy
import shutil
import stat
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

CONFIG = (
    Path(__file__).resolve().parents[2]
    / "berth"
    / "images"
    / "stack"
    / "base-notebook"
    / "jupyter_server_config.py"
)


class Section(dict):
    """Enough of traitlets' Config for a config file: c.Section.trait = value."""

    def __getattr__(self, name: str) -> Any:
        return self.setdefault(name, Section())

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class PrecompressedFileHandler:
    """Stands in for berth_static_gzip's handler class."""


LAB_EXTENSIONS_SERVED: list[bool] = []  # a call of the stand-in serve_lab_extensions()


@pytest.fixture
def run_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Runs the file with a fake jupyter_core (data dir in tmp_path) and a clean environment."""
    paths = types.ModuleType("jupyter_core.paths")
    paths.jupyter_data_dir = lambda: str(tmp_path / "data")  # type: ignore[attr-defined]
    package = types.ModuleType("jupyter_core")
    package.paths = paths  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jupyter_core", package)
    monkeypatch.setitem(sys.modules, "jupyter_core.paths", paths)
    # the image installs it into site-packages (precompress_static.py); a stand-in here
    static_gzip = types.ModuleType("berth_static_gzip")
    static_gzip.PrecompressedFileHandler = PrecompressedFileHandler  # type: ignore[attr-defined]
    static_gzip.serve_lab_extensions = lambda: LAB_EXTENSIONS_SERVED.append(True)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "berth_static_gzip", static_gzip)
    for name in ("GEN_CERT", "NB_UMASK", "BERTH_ENVS_DIR", "JUPYTERHUB_ROOT_DIR"):
        monkeypatch.delenv(name, raising=False)
    # set (not deleted) so that monkeypatch restores it after the file changed it
    monkeypatch.setenv("JUPYTER_PATH", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def run(**server_app: Any) -> Section:
        LAB_EXTENSIONS_SERVED.clear()
        config = Section()
        for key, value in server_app.items():
            config.ServerApp[key] = value
        runpy.run_path(str(CONFIG), init_globals={"get_config": lambda: config})
        return config

    return run


def test_listens_on_all_interfaces_and_leaves_the_port_to_jupyter(run_config: Any) -> None:
    config = run_config()
    assert config.ServerApp.ip == "0.0.0.0"
    assert config.ServerApp.open_browser is False
    assert "port" not in config.ServerApp  # JUPYTER_PORT, or the hub's port for singleuser
    assert "certfile" not in config.ServerApp


def test_responses_are_compressed_and_other_tornado_settings_are_merged(run_config: Any) -> None:
    """Compression and the pre-compressed static handler are added to tornado settings given
    earlier, as a plain dict; a static handler configured earlier is kept.

    jupyterhub-singleuser runs ``"log_function" in config.ServerApp.get("tornado_settings", {})``;
    with ``c.ServerApp.tornado_settings.update(...)`` that value was a LazyConfigValue and every
    spawn through a hub failed ("argument of type 'LazyConfigValue' is not iterable")."""
    config = run_config()
    assert config.ServerApp.tornado_settings == {
        "static_handler_class": PrecompressedFileHandler,
        "compress_response": True,
    }
    assert "log_function" not in config.ServerApp.get("tornado_settings", {})
    earlier = run_config(tornado_settings={"headers": {"X-Test": "1"}, "static_handler_class": int})
    assert earlier.ServerApp.tornado_settings == {
        "static_handler_class": int,
        "headers": {"X-Test": "1"},
        "compress_response": True,
    }


def test_lab_extensions_get_the_handler_only_with_the_static_files(run_config: Any) -> None:
    """/lab/extensions/ is served from the build's copies too, but not when an earlier config
    file chose its own static handler (that file's choice stands for both)."""
    run_config()
    assert LAB_EXTENSIONS_SERVED == [True]
    run_config(tornado_settings={"static_handler_class": int})
    assert LAB_EXTENSIONS_SERVED == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_gen_cert_makes_a_self_signed_certificate_and_a_private_key(
    run_config: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GEN_CERT", "yes")
    config = run_config()
    cert, key = Path(config.ServerApp.certfile), Path(config.ServerApp.keyfile)
    assert cert.parent == key.parent == tmp_path / "data"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    subject, issuer = (
        subprocess.run(
            ["openssl", "x509", "-noout", f"-{what}", "-in", str(cert)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("=", 1)[1]
        for what in ("subject", "issuer")
    )
    assert subject == issuer
    # A second start reuses the certificate while it is valid.
    before = cert.read_bytes()
    run_config()
    assert cert.read_bytes() == before


def test_gen_cert_failure_stops_the_server(
    run_config: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "openssl").write_text("#!/bin/sh\necho broken >&2\nexit 1\n")
    (fake / "openssl").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.setenv("GEN_CERT", "1")
    with pytest.raises(SystemExit, match="GEN_CERT"):
        run_config()


def test_nb_umask(run_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_UMASK", "027")
    previous = os.umask(0o022)
    try:
        run_config()
        assert os.umask(0o022) == 0o027
    finally:
        os.umask(previous)


def test_the_users_environment_kernels_are_on_jupyters_path(
    run_config: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """berth-kernel's specs (in the volume) are found at every start; the command and this file
    agree on where they are."""
    run_config()
    assert os.environ["JUPYTER_PATH"] == str(tmp_path / "home" / ".envs" / ".jupyter")
    monkeypatch.setenv("JUPYTERHUB_ROOT_DIR", "/home/jovyan/work")
    monkeypatch.setenv("JUPYTER_PATH", "/opt/mine")
    run_config()
    run_config()  # twice: added once
    assert os.environ["JUPYTER_PATH"] == "/opt/mine:/home/jovyan/work/.envs/.jupyter"
    monkeypatch.setenv("BERTH_ENVS_DIR", "/srv/envs")
    monkeypatch.setenv("JUPYTER_PATH", "")
    run_config()
    assert os.environ["JUPYTER_PATH"] == "/srv/envs/.jupyter"
