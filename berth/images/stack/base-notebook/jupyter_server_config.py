# Jupyter Server settings of Berth's notebook images (/etc/jupyter/jupyter_server_config.py).
# Every server application reads it: jupyter lab, notebook, nbclassic, server and
# jupyterhub-singleuser (which then overrides ip/port/certificates from the hub's environment).
# Settings given on the command line (NOTEBOOK_ARGS, CMD arguments) win over the ones made here.
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

# Reachable through the container's published port. The port itself is left to jupyter_server,
# which reads JUPYTER_PORT (default 8888): setting ServerApp.port here would also pin it for
# servers that must take theirs from elsewhere.
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.open_browser = False
# Responses are gzip-compressed for browsers that accept it: JupyterLab's first paint fetches
# megabytes of JavaScript (jlab_core alone is 2.5 MB, 0.6 MB compressed), and the static files
# already carry "Cache-Control: public, max-age=31536000, immutable" under their hashed names, so
# a reload takes them from the browser's cache. The static files themselves are served from gzip
# copies written at image build (berth_static_gzip.py, precompress_static.py): compressing
# jlab_core on every request cost the server 80-140 ms of CPU in each first paint. Settings given
# by an earlier config file are kept (a static_handler_class of its own included).
# The value must be a plain dict: jupyterhub-singleuser tests `"log_function" in` the
# configured settings, which fails on the lazy value that `c.ServerApp.tornado_settings.update`
# would leave (every spawn then died with "LazyConfigValue is not iterable").
from berth_static_gzip import (  # noqa: E402 (after get_config)
    PrecompressedFileHandler,
    serve_lab_extensions,
)

_tornado = c.ServerApp.get("tornado_settings") or {}
if hasattr(_tornado, "get_value"):  # a LazyConfigValue from an earlier file's update()
    _tornado = _tornado.get_value({})
c.ServerApp.tornado_settings = {
    "static_handler_class": PrecompressedFileHandler,
    **_tornado,
    "compress_response": True,
}
# A container has no desktop trash; deleting to ~/.local/share/Trash only fills the user's volume.
c.FileContentsManager.delete_to_trash = False

TRUE_VALUES = {"1", "yes", "true", "on"}

# Jupyter refuses to run as root. start.sh keeps root only when asked for with NB_USER=root or
# NB_UID=0 (docker-stacks' "rootless" mode, where root in the container is the host's user).
if os.geteuid() == 0 and (os.environ.get("NB_UID") == "0" or os.environ.get("NB_USER") == "root"):
    c.ServerApp.allow_root = True


def _cert_usable(cert: Path, key: Path) -> bool:
    """A certificate made by an earlier start that is still valid for a day can be reused."""
    if not (cert.is_file() and key.is_file()):
        return False
    check = ["openssl", "x509", "-checkend", "86400", "-noout", "-in", str(cert)]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key (mode 600) for HTTPS, made with openssl."""
    cert, key = directory / "notebook.crt", directory / "notebook.key"
    if _cert_usable(cert, key):
        return cert, key
    directory.mkdir(parents=True, exist_ok=True)
    hostname = socket.gethostname()
    command = [
        "openssl", "req", "-x509", "-nodes", "-days", "365",
        # P-256 keys are made instantly, where RSA would slow every start.
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-subj", f"/O=Berth self-signed/CN={hostname}",
        "-addext", f"subjectAltName=DNS:{hostname},DNS:localhost,IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    previous = os.umask(0o077)  # the key is never readable by others, not even for a moment
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        os.umask(previous)
    if result.returncode != 0:
        # Raising SystemExit, not an Exception: traitlets would log an exception and carry on,
        # and the server would then serve plain HTTP although HTTPS was asked for.
        raise SystemExit(f"GEN_CERT: openssl could not make a certificate: {result.stderr.strip()}")
    key.chmod(stat.S_IRUSR | stat.S_IWUSR)
    cert.chmod(0o644)
    return cert, key


if os.environ.get("GEN_CERT", "").strip().lower() in TRUE_VALUES:
    _cert, _key = self_signed_certificate(Path(jupyter_data_dir()))
    c.ServerApp.certfile = str(_cert)
    c.ServerApp.keyfile = str(_key)

# start.sh applies NB_UMASK already; this covers servers started without it (another entrypoint).
if os.environ.get("NB_UMASK"):
    try:
        os.umask(int(os.environ["NB_UMASK"], 8))
    except ValueError:
        raise SystemExit(f"NB_UMASK={os.environ['NB_UMASK']!r} is not an octal umask") from None


def berth_envs_root(environ: Mapping[str, str]) -> Path:
    """Where `berth-kernel` keeps the user's environments (the command computes the same)."""
    if environ.get("BERTH_ENVS_DIR"):
        return Path(environ["BERTH_ENVS_DIR"])
    base = environ.get("JUPYTERHUB_ROOT_DIR") or environ.get("HOME") or str(Path.home())
    return Path(base) / ".envs"


# The kernels of the user's own environments (berth-kernel create): their specs live beside the
# environments, in the user's volume, so they are on Jupyter's path at every start -- also when
# only ~/work is mounted and ~/.local/share/jupyter starts empty. Kernels and terminals inherit
# the variable, so `jupyter kernelspec list` in them sees the same kernels.
_berth_specs = str(berth_envs_root(os.environ) / ".jupyter")
_jupyter_path = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
if _berth_specs not in _jupyter_path:
    os.environ["JUPYTER_PATH"] = os.pathsep.join([*_jupyter_path, _berth_specs])

# berth_server_start.py (imported at every Python start by a .pth in the venv) made this
# server's start collect garbage less often and take compiled regular expressions from a
# cache; both end at the first turn of the server's event loop, once the start's imports and
# set-up are done. (The loop this returns is the one the server runs: jupyter_server asks
# tornado for the thread's current loop the same way.)
_berth_server_start = sys.modules.get("berth_server_start")
if _berth_server_start is not None and _berth_server_start.paused is not None:
    from tornado.ioloop import IOLoop

    IOLoop.current().add_callback(_berth_server_start.resume)

# JupyterLab's prebuilt extensions (/lab/extensions/, a route whose handler class jupyterlab_server
# names itself) from their gzip copies too, unless an earlier file chose its own static handler.
# Last in this file: it imports jupyterlab_server, and whatever went wrong there must not skip
# any setting above (traitlets logs an error in a config file and ignores the rest of it).
if c.ServerApp.tornado_settings["static_handler_class"] is PrecompressedFileHandler:
    serve_lab_extensions()
