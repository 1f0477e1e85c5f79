"""Make base-notebook's freshly installed Python environment small without losing a feature.

Run once at build time, as the notebook user, right after `pip install`, in the same layer (a
file removed in a later layer still ships in the earlier one). What it does, each step measured
in docs/images.md:

1. rfc3987_syntax: installs Berth's lazy syntax_helpers over the published one (parsers built on
   first use instead of ~1.4 s at every server start), after checking the published file is the
   one that replacement was written for.
   jupyterhub: the hub-only imports of the modules jupyterhub-singleuser loads become imports on
   first use (lazy_hub_imports.py: no sqlalchemy, alembic, jupyterhub.orm or page handlers in a
   user server, ~37 MiB and ~0.3 s less), also checked against the release they were made for;
   likewise requests, rfc3986_validator and JupyterLab's PyPI client in every server
   (lazy_server_imports.py).
2. Removes what no feature reads at run time: packages' own test suites, the JavaScript source
   maps of nbclassic (read only by a browser's developer tools), the files listed in UNREAD
   (each with its reason), and Babel's data of locales no JupyterLab language pack exists for.
3. Strips the symbol tables from compiled extension modules (`strip --strip-unneeded`: the
   dynamic symbols the loader needs stay).
4. Hard-links files whose bytes are identical (JupyterLab ships its 17 MB of static assets twice:
   in the package and in share/jupyter/lab): one copy on disk, both paths still real files.
5. Keeps byte-code only for the modules that the server's start, a kernel's start, a terminal and
   jupyterhub-singleuser load (recorded by running them: record_start.py); any other
   module is compiled the first time it is imported, as Python always does. pip installs
   without compiling (--no-compile): the recorded start itself writes the byte-code of each
   module it imports, so the build no longer compiles ~3 times more modules only to delete
   their byte-code here.
6. Installs berth_server_start.py (with a .pth that imports it at every Python start): a
   Jupyter server's start collects garbage less often and takes the regular expressions the
   recorded start compiled from a cache written here, until the server runs.

Standard library only. Every wait is bounded; the server it starts listens on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections import defaultdict
from pathlib import Path

import berth_server_start
import lazy_hub_imports
import lazy_server_imports
from record_start import bytecode_used_at_start

VENV = Path(sys.prefix)
SITE = Path(sysconfig.get_paths()["purelib"])
HERE = Path(__file__).resolve().parent
# sha256 of rfc3987_syntax 1.1.0's syntax_helpers.py, the file lazy_rfc3987_syntax replaces.
RFC3987_SYNTAX_HELPERS_SHA256 = "775d776cfc5aa23f93147cca7a7a0c362452e4d85537c2453aaab5478557ce29"
# Installed by the foundation (a lower layer): touching them here would only add a copy.
FOUNDATION_PACKAGES = ("pip",)
# Not tests although named so: jedi's type stubs for third-party packages' `test` modules.
KEEP_TEST_DIRS_UNDER = (SITE / "jedi" / "third_party",)


def say(text: str) -> None:
    print(f"slim_venv: {text}", flush=True)


def tree_size(path: Path) -> int:
    seen: set[int] = set()
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            info = os.lstat(os.path.join(root, name))
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_size
    return total


def ours(path: Path) -> bool:
    """A path this layer installed (not the foundation's pip)."""
    try:
        parts = path.relative_to(SITE).parts
    except ValueError:
        return True
    first = parts[0] if parts else ""
    return not any(first == p or first.startswith(f"{p}-") for p in FOUNDATION_PACKAGES)


def lazy_rfc3987_syntax() -> None:
    target = SITE / "rfc3987_syntax"
    helpers = target / "syntax_helpers.py"
    digest = hashlib.sha256(helpers.read_bytes()).hexdigest()
    if digest != RFC3987_SYNTAX_HELPERS_SHA256:
        sys.exit(
            f"slim_venv: {helpers} is not the file lazy_rfc3987_syntax was written for "
            f"(sha256 {digest}); compare the new release with it and update both"
        )
    for name in ("__init__.py", "syntax_helpers.py"):
        shutil.copyfile(HERE / "lazy_rfc3987_syntax" / name, target / name)
    shutil.rmtree(target / "__pycache__", ignore_errors=True)
    say("rfc3987_syntax: parsers now built on first use")


# Read by nothing that runs here (paths under site-packages; globs). Test suites are found by
# name, and source maps by suffix, in remove_unread_files().
UNREAD = (
    # JupyterLab's UI-test helper (galata): an extension only UI test suites configure.
    "jupyterlab/galata",
    # pydevd: sources of its compiled accelerators (no compiler here; the .so files stay),
    # and its Windows-only attach code.
    "debugpy/_vendored/pydevd/**/*.c",
    "debugpy/_vendored/pydevd/**/*.cpp",
    "debugpy/_vendored/pydevd/pydevd_attach_to_process/winappdbg",
    "debugpy/_vendored/pydevd/pydevd_attach_to_process/windows",
    # MathJax 2 (nbclassic): the speech maps bundled for Internet Explorer.
    "nbclassic/static/components/MathJax/extensions/a11y/mathmaps/mathmaps_ie.js",
    # Font formats only Internet Explorer (.eot) and pre-2011 Safari (SVG fonts) ask for: every
    # browser these front ends support takes the woff2/woff beside them.
    "nbclassic/static/components/font-awesome/fonts/fontawesome-webfont.eot",
    "nbclassic/static/components/font-awesome/fonts/fontawesome-webfont.svg",
)


# Babel's CLDR data is read in a user server only by jupyterlab_server, for the locale of a
# JupyterLab language pack (is it valid, its name in the chosen language): the languages that
# have a pack on PyPI (jupyterlab-language-pack-<language>-<region>), and English, are kept
# with all their regional and script variants; the other ~700 locales (25 MB) go.
BABEL_LANGUAGES = frozenset(
    ("en", "ar", "ca", "cs", "da", "de", "el", "es", "et", "fi", "fr", "he", "hu", "hy", "id",
     "it", "ja", "ko", "lt", "nl", "nb", "nn", "no", "pl", "pt", "ro", "ru", "tr", "uk", "vi",
     "zh")
)  # fmt: skip


def babel_locales_without_pack() -> set[Path]:
    data = SITE / "babel" / "locale-data"
    return {
        path for path in data.glob("*.dat")
        if path.stem != "root" and path.stem.split("_")[0] not in BABEL_LANGUAGES
    }  # fmt: skip


def is_svg_font(path: Path) -> bool:
    return path.suffix == ".svg" and b"<font" in path.read_bytes()


def remove_unread_files() -> None:
    doomed: set[Path] = set()
    for pattern in UNREAD:
        doomed.update(SITE.glob(pattern))
    doomed.update(babel_locales_without_pack())
    # JupyterLab's static files (two identical copies: the package's, and the application
    # directory's that is served) are named by hash: its SVG fonts are found by content.
    for static in (SITE / "jupyterlab" / "static", VENV / "share" / "jupyter" / "lab" / "static"):
        doomed.update(static.glob("*.eot"))
        doomed.update(path for path in static.glob("*.svg") if is_svg_font(path))
    for root, dirs, files in os.walk(SITE):
        here = Path(root)
        if not ours(here) or any(here.is_relative_to(k) for k in KEEP_TEST_DIRS_UNDER):
            dirs[:] = []
            continue
        for name in list(dirs):
            if name in ("tests", "test") and (here / name / "__init__.py").exists():
                doomed.add(here / name)
                dirs.remove(name)
        doomed.update(here / name for name in files if name.endswith((".js.map", ".css.map")))
    freed = 0
    for path in sorted(doomed):
        if not path.exists():  # inside a directory removed before it
            continue
        if path.is_dir():
            freed += tree_size(path)
            shutil.rmtree(path)
        else:
            freed += path.stat().st_size
            path.unlink()
    say(f"removed {len(doomed)} test suites, source maps and unread files: {freed / 2**20:.1f} MiB")


def strip_extension_modules() -> None:
    strip = shutil.which("strip")
    if strip is None:
        sys.exit("slim_venv: `strip` (binutils) is needed at build time")
    before = after = 0
    for path in sorted(SITE.rglob("*.so*")):
        # debugpy injects its attach library into other processes by symbol name: left whole.
        if not path.is_file() or path.is_symlink() or not ours(path):
            continue
        if "pydevd_attach_to_process" in path.parts:
            continue
        before += path.stat().st_size
        subprocess.run([strip, "--strip-unneeded", str(path)], check=True)
        after += path.stat().st_size
    say(f"stripped extension modules: {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")


def hard_link_duplicates() -> None:
    by_size: dict[int, list[Path]] = defaultdict(list)
    for top in (SITE, VENV / "share"):
        for path in top.rglob("*"):
            usable = path.is_file() and not path.is_symlink() and ours(path)
            if usable and path.stat().st_size >= 1024:  # small files: links would not pay
                by_size[path.stat().st_size].append(path)
    freed = 0
    for size, paths in by_size.items():
        if len(paths) < 2:
            continue
        first_of: dict[tuple[str, int], Path] = {}
        for path in paths:
            info = path.stat()
            key = (hashlib.sha256(path.read_bytes()).hexdigest(), info.st_mode)
            original = first_of.setdefault(key, path)
            if original != path and not os.path.samefile(original, path):
                temporary = path.with_name(path.name + ".berth-link")
                os.link(original, temporary)
                os.replace(temporary, path)
                freed += size
    say(f"hard-linked identical files: {freed / 2**20:.1f} MiB")


def install_server_start(patterns: set[tuple[str | bytes, int]]) -> None:
    """berth_server_start.py, its .pth (imported at every start) and its regex cache, with
    byte-code (a fresh container would otherwise compile it at every start)."""
    module = SITE / "berth_server_start.py"
    shutil.copyfile(HERE / "berth_server_start.py", module)
    (SITE / "berth_server_start.pth").write_text("import berth_server_start\n")
    entries = berth_server_start.write_cache(str(SITE / "berth_server_start.regex"), patterns)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(module)], check=True)
    say(f"server start: {entries} regular expressions compiled ahead (berth_server_start.py)")


def keep_startup_bytecode(used: set[Path]) -> None:
    kept = dropped = 0
    for pyc in SITE.rglob("__pycache__/*.pyc"):
        if not ours(pyc):
            continue
        if pyc in used:
            kept += pyc.stat().st_size
        else:
            dropped += pyc.stat().st_size
            pyc.unlink()
    say(f"byte-code kept for {len(used)} start-up modules: {kept / 2**20:.1f} MiB kept, "
        f"{dropped / 2**20:.1f} MiB dropped")  # fmt: skip


def main() -> None:
    before = tree_size(VENV)
    lazy_rfc3987_syntax()
    patched = lazy_hub_imports.install(SITE)
    say(f"jupyterhub: hub-only imports made lazy in {len(patched) - 1} modules")
    server = lazy_server_imports.install(SITE)
    say(
        f"requests, rfc3986_validator, PyPI client, IPython: on first use ({len(server) - 1} files)"
    )
    patched = [*patched, *server[:-1]]
    # Compiled again so that the new files have byte-code before the recording sees them.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(SITE / "rfc3987_syntax"),
                    *map(str, patched)], check=True)  # fmt: skip
    used, patterns = bytecode_used_at_start()
    remove_unread_files()
    strip_extension_modules()
    keep_startup_bytecode(used)
    install_server_start(patterns)
    hard_link_duplicates()
    say(f"environment {before / 2**20:.0f} MiB -> {tree_size(VENV) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
