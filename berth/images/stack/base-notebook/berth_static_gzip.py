"""Jupyter Server's static file handler, serving the gzip copies written at image build.

Installed into the image's site-packages by precompress_static.py and named as the server's
`static_handler_class` by /etc/jupyter/jupyter_server_config.py, so it serves every extension's
static files (/static/lab/, /static/notebook/, …). The config also has it serve JupyterLab's
prebuilt extensions (/lab/extensions/: remoteEntry and chunk files) through
`serve_lab_extensions()`: jupyterlab_server names jupyter_server's FileFindHandler for that
route itself, with no setting to change it. Tornado's `compress_response` gzips each
static response again on every request (jlab_core, 2.5 MB: 80-140 ms of the server's CPU per
browser); here a browser that accepts gzip gets `<file>.gz`, compressed once at build, with
`Content-Encoding: gzip`. Everything else is jupyter_server's own handler: which file a path
names and whether it may be served (search path, traversal, symlinks), Cache-Control,
Last-Modified and 304s, ranges.

A copy is used only if it is a regular file (not a link) beside the file the upstream checks
allowed, with exactly that file's modification time (precompress_static.py gives it that
time): a file rewritten after the build (`jupyter lab build` in a child image) is served
plain, and compressed on the fly as before, never from a stale copy.
"""

from __future__ import annotations

import os
import stat

from jupyter_server.base.handlers import FileFindHandler

SUFFIX = ".gz"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header lists gzip with a non-zero quality."""
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


class PrecompressedFileHandler(FileFindHandler):
    """FileFindHandler that sends a file's build-time gzip copy to browsers accepting gzip."""

    plain_path: str | None = None

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        checked = super().validate_absolute_path(root, absolute_path)
        self.plain_path = checked
        if checked is None:
            return None
        copy = checked + SUFFIX
        try:
            copy_stat, plain_stat = os.lstat(copy), os.stat(checked)
        except OSError:
            return checked
        if not stat.S_ISREG(copy_stat.st_mode) or copy_stat.st_mtime_ns != plain_stat.st_mtime_ns:
            return checked
        # The response differs by Accept-Encoding from here on, whoever gets which.
        if not self.settings.get("compress_response"):  # tornado's gzip adds Vary itself
            self.add_header("Vary", "Accept-Encoding")
        if not accepts_gzip(self.request.headers.get("Accept-Encoding", "")):
            return checked
        self.set_header("Content-Encoding", "gzip")
        # tornado >= 6.6 keeps the stat of the file it validated for the size and time it
        # reports; those must be the copy's (the build's check fails if this stops applying).
        self._stat_result = copy_stat
        return copy

    def get_content_type(self) -> str:
        """The type of the file itself (tornado would call `x.js.gz` application/gzip)."""
        served = self.absolute_path
        self.absolute_path = self.plain_path or served
        try:
            return super().get_content_type()
        finally:
            self.absolute_path = served


def serve_lab_extensions() -> bool:
    """Makes jupyterlab_server route /lab/extensions/ to PrecompressedFileHandler; False (and
    nothing changed) if JupyterLab cannot be imported or something else replaced the class.

    jupyterlab_server's add_handlers() looks the class up in its module when the server adds
    its handlers, after the configuration files ran; the route keeps its own arguments
    (search path, no_cache_paths, follow_dir_symlinks), which this subclass takes as they are.
    precompress_static.py check fails the build if the route stops sending the copies."""
    try:
        from jupyterlab_server import handlers
    except Exception:  # not installed, or broken: the server's own load of JupyterLab
        return False  # reports that; the config file calling this must go on either way
    if handlers.FileFindHandler is not FileFindHandler:
        return False
    handlers.FileFindHandler = PrecompressedFileHandler
    return True
