"""What base-notebook does before it answers, watched in a real container (issue 9).

The server is started as `docker run` starts it, with PYTHONPROFILEIMPORTTIME=1, so the container
log carries CPython's own record of every module the start imported and what each cost. No test
here compares a time with a constant: costs are compared with each other, from the same start.

The image is BERTH_TEST_IMAGE (default berth/base-notebook:latest).
"""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from image_fleet import BOOT_TIMEOUT, http_get, published_base
from polling import wait_until

pytestmark = pytest.mark.integration

TOKEN = "speed-test-token-not-secret"
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$", re.M)
# rfc3987_syntax as published builds 40 Earley parsers while being imported: 75 % of the
# jupyter_server.serverapp import (1.46 s of 1.96 s). Lazy, importing it is a few file reads.
RFC3987_SHARE_OF_SERVERAPP_BUDGET = 0.05
# Imported (or, for the PyPI client's transport, httpcore's connection pool, made) by every
# start before lazy_server_imports.py, used by none (~80 ms of CPU together).
NOT_AT_START = ("requests", "urllib3", "rfc3986_validator", "httpcore._async")

# Run in a container of an image: what the lazy stand-ins stand for still works on use.
LAZY_SERVER_SCRIPT = r"""
import json, sys
from jupyterlab.extensions.pypi import PyPIExtensionManager
answers = {}
manager = PyPIExtensionManager()
answers["client made at start"] = "httpcore._async" in sys.modules
import httpx
answers["client on use"] = isinstance(manager._httpx_client.timeout, httpx.Timeout)
print(json.dumps(answers))
"""
LAZY_SERVER_ANSWERS = {
    "client made at start": False,
    "client on use": True,
}


# Run in a container of an image: the lazy parsers give the published answers, and
# jupyter_events still refuses an event whose "iri" field is not an IRI.
EVENT_VALIDATION_SCRIPT = r"""
import json, logging, jsonschema, rfc3987_syntax
from jupyter_events import EventLogger
checker = jsonschema.FormatChecker()
answers = {
    "iri ok": checker.conforms("https://例え.jp/ü?q=1#x", "iri"),
    "iri bad": checker.conforms("http://[bad", "iri"),
    "iri-reference ok": checker.conforms("../a/b?c", "iri-reference"),
    "validator": rfc3987_syntax.is_valid_syntax_ipv4address("10.0.0.1"),
    "validator bad": rfc3987_syntax.is_valid_syntax_ipv4address("10.0.0.256"),
    "uri ok": checker.conforms("https://example.org/a?b#c", "uri"),
    "uri bad": checker.conforms("no scheme", "uri"),
    "uri-reference ok": checker.conforms("../a/b?c", "uri-reference"),
}
schema = {
    "$id": "https://berth.test/speed/link", "version": "1", "title": "link",
    "type": "object", "properties": {"target": {"type": "string", "format": "iri"}},
}
logger = EventLogger(handlers=[logging.NullHandler()])  # with no handler, emit() skips all
logger.register_event_schema(schema)
logger.emit(schema_id=schema["$id"], data={"target": "https://example.org/ok"})
try:
    logger.emit(schema_id=schema["$id"], data={"target": "http://[bad"})
    answers["bad event"] = "accepted"
except jsonschema.ValidationError:
    answers["bad event"] = "refused"
print(json.dumps(answers))
"""
# The notebook images only (the hub has no JupyterLab): the extension listings' fetch, the one
# user of requests in the server, still reaches it.
LISTINGS_SCRIPT = EVENT_VALIDATION_SCRIPT.replace(
    "print(json.dumps(answers))",
    "import requests\n"
    "from jupyterlab_server import listings_handler\n"
    'answers["listings reach requests"] = listings_handler.requests.request is requests.request\n'
    "print(json.dumps(answers))",
)
EVENT_VALIDATION_ANSWERS = {
    "iri ok": True,
    "iri bad": False,
    "iri-reference ok": True,
    "validator": True,
    "validator bad": False,
    "uri ok": True,
    "uri bad": False,
    "uri-reference ok": True,
    "bad event": "refused",
}


def http_get_gzip(url: str, token: str) -> tuple[int, dict[str, str], bytes]:
    import urllib.request

    request = urllib.request.Request(url)
    request.add_header("Authorization", f"token {token}")
    request.add_header("Accept-Encoding", "gzip")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as answer:
        return answer.status, dict(answer.headers), answer.read()


@pytest.fixture(scope="module")
def started(run_container_module: Any) -> Iterator[dict[str, Any]]:
    """One server, started with the import profile on; its log once /api/status answered."""
    container = run_container_module(
        environment={
            "PYTHONPROFILEIMPORTTIME": "1",
            "NOTEBOOK_ARGS": f"--IdentityProvider.token={TOKEN}",
        },
        ports={"8888/tcp": ("127.0.0.1", None)},
    )

    base = wait_until(lambda: published_base(container), 30, "a published port")
    wait_until(lambda: _status(base) == 200, BOOT_TIMEOUT, "the server to answer /api/status")
    log = container.logs(stdout=True, stderr=True).decode(errors="replace")
    # Byte-code written since the engine created the container (it wrote /etc/hostname then),
    # read now: the other tests import more in this container afterwards.
    time.sleep(1)  # extensions finish loading just after the first answer
    code, found = container.exec_run(
        ["find", "/opt/venv", "-name", "*.pyc", "-newer", "/etc/hostname"], user="1000"
    )
    assert code == 0, found
    compiled = found.decode().split()
    yield {"container": container, "base": base, "log": log, "compiled_at_start": compiled}


def _status(base: str) -> int:
    try:
        return http_get(f"{base}/api/status", TOKEN)[0]
    except OSError:
        return 0


def imports(log: str) -> dict[str, int]:
    """Module name -> cumulative import time (µs) from an -X importtime log."""
    return {match[4]: int(match[2]) for match in IMPORT_LINE.finditer(log)}


def test_the_start_builds_no_rfc3987_parser(started: dict[str, Any]) -> None:
    """Fails on main before this change: rfc3987_syntax imported lark and built 40 parsers
    (1.46 s, 75 % of jupyter_server.serverapp's import) at every start."""
    seen = imports(started["log"])
    assert "jupyter_server.serverapp" in seen, "no import profile in the log"
    # jsonschema still imports the package (its format checkers stay registered) ...
    assert "rfc3987_syntax" in seen
    # ... but nothing of the parser generator is loaded before the server answers,
    assert not sorted(name for name in seen if name == "lark" or name.startswith("lark."))
    # and its share of the server's import stays within the budget.
    share = seen["rfc3987_syntax"] / seen["jupyter_server.serverapp"]
    assert share <= RFC3987_SHARE_OF_SERVERAPP_BUDGET, f"rfc3987_syntax: {share:.0%}"


def test_the_start_leaves_out_what_only_rare_paths_use(started: dict[str, Any]) -> None:
    """Fails on main before this change: jupyterlab_server's listings handler imported requests
    (with urllib3, ~26 ms), jsonschema's "uri" checker rfc3986_validator (two large regular
    expressions compiled, ~20 ms) and JupyterLab's extension manager made its PyPI client
    (~35 ms) at every start; all used later, if ever."""
    seen = imports(started["log"])
    assert "jupyter_server.serverapp" in seen, "no import profile in the log"
    assert "jupyterlab_server.listings_handler" in seen and "jsonschema._format" in seen
    assert "jupyterlab.extensions.pypi" in seen
    assert sorted(name for name in NOT_AT_START if name in seen) == []


def test_what_the_start_leaves_out_works_when_used(started: dict[str, Any]) -> None:
    """JupyterLab's extension manager gets a real httpx client once it uses it."""
    code, output = started["container"].exec_run(["python", "-c", LAZY_SERVER_SCRIPT], user="1000")
    text = output.decode(errors="replace")
    assert code == 0, text
    import json

    assert json.loads(text.strip().splitlines()[-1]) == LAZY_SERVER_ANSWERS


def test_events_are_still_validated_including_iri_formats(started: dict[str, Any]) -> None:
    """The lazy parsers give the published answers, and jupyter_events still refuses an event
    whose "iri" field is not an IRI (the format check runs, building its parser then); "uri"
    values are still checked (rfc3986_validator loaded then), and the listings handler's
    requests is the real one once used."""
    code, output = started["container"].exec_run(["python", "-c", LISTINGS_SCRIPT], user="1000")
    text = output.decode(errors="replace")
    assert code == 0, text
    import json

    answers = json.loads(text.strip().splitlines()[-1])
    assert answers == {**EVENT_VALIDATION_ANSWERS, "listings reach requests": True}


def test_lab_assets_are_compressed_and_cached_for_a_year(started: dict[str, Any]) -> None:
    """Fails on main before this change: jlab_core (2.5 MB) was sent uncompressed."""
    base = started["base"]
    page = http_get(f"{base}/lab", TOKEN)[2].decode()
    script = re.search(r'src="(/static/lab/main\.[0-9a-f]+\.js\?v=[0-9a-f]+)"', page)
    assert script, "no main bundle in /lab"
    status, headers, body = http_get_gzip(f"{base}{script[1]}", TOKEN)
    assert status == 200
    assert headers.get("Content-Encoding") == "gzip"
    assert "immutable" in headers.get("Cache-Control", "")
    assert gzip.decompress(body)[:100] == http_get(f"{base}{script[1]}", TOKEN)[2][:100]


# Run in a container of an image: every build-time gzip copy of the static files the server
# serves decompresses to the file beside it and carries its time (else the server would skip it).
COPIES_SCRIPT = r"""
import gzip, json, os, pathlib, notebook, sys
roots = [pathlib.Path(sys.prefix, "share/jupyter/lab/static"),
         pathlib.Path(notebook.__file__).parent / "static",
         pathlib.Path(sys.prefix, "share/jupyter/labextensions")]
copies, wrong = {}, []
for root in roots:
    copies[root.name] = 0
    for copy in root.rglob("*.gz"):
        plain = copy.with_suffix("")
        copies[root.name] += 1
        if gzip.decompress(copy.read_bytes()) != plain.read_bytes():
            wrong.append(str(copy))
        elif copy.stat().st_mtime_ns != plain.stat().st_mtime_ns:
            wrong.append(f"{copy} (time)")
print(json.dumps({"copies": copies, "wrong": wrong}))
"""
LAB_EXTENSIONS = "/opt/venv/share/jupyter/labextensions"


def read_in(container: Any, path: str) -> bytes:
    code, output = container.exec_run(["cat", path], user="1000", demux=True)
    assert code == 0, output
    return output[0] or b""


def lab_bundles(base: str) -> list[str]:
    page = http_get(f"{base}/lab", TOKEN)[2].decode()
    main = re.search(r'src="(/static/lab/main\.[0-9a-f]+\.js\?v=[0-9a-f]+)"', page)
    assert main, "no main bundle in /lab"
    return [main[1]]


def test_static_files_come_from_the_build_gzip_copies(started: dict[str, Any]) -> None:
    """Fails on main before this change: the server gzipped every static file on each request
    (jlab_core: 80-140 ms of CPU in each first paint); now the body a gzip-accepting browser
    gets is the build's copy, byte for byte, and decompresses to the very file a client
    without gzip gets."""
    container, base = started["container"], started["base"]
    lab = "/opt/venv/share/jupyter/lab/static"
    code, output = container.exec_run(["sh", "-c", f"ls -S {lab}/jlab_core.*.js"], user="1000")
    assert code == 0, output
    core = output.decode().split()[0].rsplit("/", 1)[1]
    for url in [*lab_bundles(base), f"/static/lab/{core}?v=1"]:
        name = url.split("?")[0].rsplit("/", 1)[1]
        status, headers, body = http_get_gzip(f"{base}{url}", TOKEN)
        assert (status, headers.get("Content-Encoding")) == (200, "gzip"), url
        assert body == read_in(container, f"{lab}/{name}.gz"), f"{url}: not the build's copy"
        assert headers["Content-Type"].startswith("application/javascript")
        assert "Accept-Encoding" in headers.get("Vary", "")
        assert headers.get("Cache-Control") == "public, max-age=31536000, immutable"
        assert int(headers["Content-Length"]) == len(body)
        plain_status, plain_headers, plain = http_get(f"{base}{url}", TOKEN)
        assert plain_status == 200 and "Content-Encoding" not in plain_headers
        assert plain == read_in(container, f"{lab}/{name}") == gzip.decompress(body)
        assert plain_headers["Last-Modified"] == headers["Last-Modified"]


def test_every_gzip_copy_is_its_file_compressed(started: dict[str, Any]) -> None:
    """A stale copy would serve old code: every copy in the image decompresses to its file and
    has its time (the build writes them after slim_venv.py, from the final files)."""
    code, output = started["container"].exec_run(["python", "-c", COPIES_SCRIPT], user="1000")
    text = output.decode(errors="replace")
    assert code == 0, text
    import json

    answers = json.loads(text.strip().splitlines()[-1])
    assert answers["wrong"] == []
    assert answers["copies"]["static"] > 200  # Lab's and Notebook's ("static" both)
    assert answers["copies"]["labextensions"] >= 2  # the two remoteEntry files at least


def lab_extension_scripts(container: Any) -> list[str]:
    """The prebuilt extensions' scripts that have a copy, relative to LAB_EXTENSIONS."""
    code, output = container.exec_run(
        ["sh", "-c", f"cd {LAB_EXTENSIONS} && find . -name '*.js.gz'"], user="1000"
    )
    assert code == 0, output
    return sorted(line[2:-3] for line in output.decode().split())


def test_lab_extensions_come_from_the_build_gzip_copies(started: dict[str, Any]) -> None:
    """Fails on main before this change: /lab/extensions/ (jupyterlab_server's own route for
    the prebuilt extensions' remoteEntry and chunk files) gzipped every script on each request
    (tornado's level 6, chunked); now a gzip-accepting browser gets the build's copy byte for
    byte, the headers of the plain file (type, Cache-Control, Last-Modified) and Vary, and a
    client without gzip the very file."""
    container, base = started["container"], started["base"]
    scripts = lab_extension_scripts(container)
    assert any("remoteEntry." in name for name in scripts), scripts
    for name in scripts:
        url = f"{base}/lab/extensions/{name}?v=1"
        status, headers, body = http_get_gzip(url, TOKEN)
        assert (status, headers.get("Content-Encoding")) == (200, "gzip"), url
        assert body == read_in(container, f"{LAB_EXTENSIONS}/{name}.gz"), f"{url}: not the copy"
        assert headers["Content-Type"].startswith("application/javascript")
        assert "Accept-Encoding" in headers.get("Vary", "")
        assert headers.get("Cache-Control") == "public, max-age=31536000, immutable"
        assert int(headers["Content-Length"]) == len(body)
        plain_status, plain_headers, plain = http_get(url, TOKEN)
        assert plain_status == 200 and "Content-Encoding" not in plain_headers
        assert plain == read_in(container, f"{LAB_EXTENSIONS}/{name}") == gzip.decompress(body)
        assert plain_headers["Last-Modified"] == headers["Last-Modified"]


@pytest.mark.parametrize(
    ("route", "directory"),
    [
        ("/static/lab/", "/opt/venv/share/jupyter/lab/static"),
        ("/lab/extensions/", f"{LAB_EXTENSIONS}/jupyterlab_pygments/static"),
    ],
)
def test_the_gzip_lookup_serves_nothing_outside_the_static_files(
    started: dict[str, Any], route: str, directory: str
) -> None:
    """Attacks the new handler's own lookup of `<file>.gz` (upstream's checks cover only the file
    a path names), on both routes it serves: traversal with gzip accepted is refused, and a copy
    that is a link to a file elsewhere (same time as the file, so only the link check stands in
    the way) is not followed: the plain file is sent. The traversal part passes on main too
    (upstream's check); the link part tests what this change added (on /lab/extensions/, whose
    route follows directory links for `jupyter labextension develop`, too)."""
    container, base = started["container"], started["base"]
    for path in (
        "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "....//....//etc/passwd",
        "%252e%252e/%252e%252e/etc/passwd",
    ):
        status, _, body = http_get_gzip_any(f"{base}{route}{path}", TOKEN)
        assert status in (400, 403, 404), (path, status)
        assert b"root:" not in body and b"root:" not in _maybe_gunzip(body)
    prefix = "" if route == "/static/lab/" else "jupyterlab_pygments/static/"
    plan = (
        f"printf 'plain-not-secret' > {directory}/berth-attack.js && "
        "printf 'root:outside-secret' | gzip > /tmp/outside.gz && "
        f"touch -r {directory}/berth-attack.js /tmp/outside.gz && "
        f"ln -s /tmp/outside.gz {directory}/berth-attack.js.gz"
    )
    code, output = container.exec_run(["sh", "-c", plan], user="1000")
    assert code == 0, output
    try:
        url = f"{base}{route}{prefix}berth-attack.js"
        status, headers, body = http_get_gzip_any(url, TOKEN)
        assert status == 200
        if headers.get("Content-Encoding") == "gzip":  # tornado's own, on the fly
            body = gzip.decompress(body)
        assert body == b"plain-not-secret"
    finally:
        container.exec_run(
            ["rm", "-f", f"{directory}/berth-attack.js", f"{directory}/berth-attack.js.gz",
             "/tmp/outside.gz"],
            user="1000",
        )  # fmt: skip


def http_get_gzip_any(url: str, token: str) -> tuple[int, dict[str, str], bytes]:
    """http_get_gzip that returns HTTP errors instead of raising them."""
    import urllib.error

    try:
        return http_get_gzip(url, token)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def _maybe_gunzip(body: bytes) -> bytes:
    try:
        return gzip.decompress(body)
    except (OSError, EOFError):
        return b""


def test_the_start_compiles_no_byte_code(started: dict[str, Any]) -> None:
    """The image keeps byte-code for exactly what a start loads: a start that has to compile
    a module (slower, and writing into the container's layer) means the build-time recording
    missed it (as it once missed jupyter_core.command, which `jupyter lab` execs away from)."""
    assert started["compiled_at_start"] == []
