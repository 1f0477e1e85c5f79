"""Keep two imports that only rare paths use out of every Jupyter server's start (build time).

Measured in base-notebook (CPU seconds of a fresh process, docs/spawner.md "What each cut
saved"): every server start, `jupyter lab` and jupyterhub-singleuser alike, imported

- requests (with urllib3, charset_normalizer, http.cookiejar; ~26 ms, ~4 MiB):
  jupyterlab_server's listings handler imports it at its top, and calls it only when an
  operator configures extension allow/block listings (`LabServerApp.blocked_extensions_uris`,
  `allowed_extensions_uris`);
- rfc3986_validator (~20 ms: two large regular expressions compiled at import): jsonschema's
  format checkers import its one function to check "uri" and "uri-reference" values, which
  none of jupyter_server's event schemas asks for;
- an HTTP client for PyPI (httpx's AsyncClient with its transport modules and a TLS context
  loading the CA bundle; ~35 ms, ~2 MiB): JupyterLab's extension manager makes it when the
  server starts, and uses it only when someone searches or installs extensions;
- IPython (~25 ms, 2.5 MiB): notebook_shim's link step evaluates every property of the classic
  notebook app, `nbextensions_path` among them, which asks IPython for its directory; no code
  of the server reads that value (see EDITS).

Here, in base-notebook only, those become stand-ins from berth_lazy_names.py: a module
imported on first attribute use, a function whose module is imported on its first call
(ImportError at once, as before, when the package is missing), the client made on its
first use (the manager only ever calls its `get`); notebook_shim lists members without
evaluating properties and proxies a property as a property (see EDITS). Each file is checked
against the sha256 of the release the edits were written for (requirements.txt pins them) and
each edited line must occur exactly once, as in lazy_hub_imports.py, which applies them.
Standard library only; called by slim_venv.py.
"""

from __future__ import annotations

from pathlib import Path

import lazy_hub_imports

# file -> (sha256 of the published file, [(line, replacement), ...]).
EDITS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    # jupyterlab_server 2.28.1
    "jupyterlab_server/listings_handler.py": (
        "c429bff9dea7a12952fab12ef2bd8ef241bb53cbbab4b409da2e29a0959295e0",
        [("import requests\n", lazy_hub_imports.lazy("requests", "requests", helper=True))],
    ),
    # jupyterlab 4.6.6
    "jupyterlab/extensions/pypi.py": (
        "a49d9604a6246f13c0cce467ab54f729f25bee4eff53cacf2eb31ea7acca8309",
        [
            (
                "        self._httpx_client = httpx.AsyncClient(**_httpx_client_args)\n",
                "        from berth_lazy_names import LazyInstance\n"
                "        self._httpx_client = LazyInstance("
                "httpx.AsyncClient, **_httpx_client_args)\n",
            )
        ],
    ),
    # notebook_shim 0.2.4: to list the classic notebook app's members (names only) its link
    # step evaluated every property, and it stored the value of each property it proxies onto
    # the server's class (its `type(attr) == property` test looks at the value, so it never
    # proxies a property lazily). `nbextensions_path` asks IPython for its directory, so every
    # start imported IPython (~25 ms, 2.5 MiB) for a value no code of the server reads. Here
    # the names are listed without evaluating properties, and a property is proxied as one
    # (read from the classic app when read), which the test was meant to do.
    "notebook_shim/nbserver.py": (
        "82541b345155acc1bc5bc01e98e4bde4affacfc116c2c14ff67a23d66eb69ea4",
        [
            (
                "    attr = getattr(obj2, name)\n",
                "    if isinstance(getattr(obj2.__class__, name, None), property):\n"
                "        setattr(obj1.__class__, name,"
                " property(lambda self: getattr(obj2, name)))\n"
                "        return\n"
                "    attr = getattr(obj2, name)\n",
            ),
            (
                "    members = inspect.getmembers(obj)\n",
                "    members = [\n"
                "        (m, None) for m in dir(obj)\n"
                "        if isinstance(getattr(type(obj), m, None), property) or hasattr(obj, m)\n"
                "    ]\n",
            ),
        ],
    ),
    # jsonschema 4.26.0 (inside `with suppress(ImportError):`, eight spaces in)
    "jsonschema/_format.py": (
        "96bb3553b892076657f59d846a5b113987909b577d91e7f0d822e8d3c1bc3f8b",
        [
            (
                "        from rfc3986_validator import validate_rfc3986\n",
                "        from berth_lazy_names import lazy_function\n"
                "        validate_rfc3986 = lazy_function("
                '"rfc3986_validator", "validate_rfc3986")\n',
            )
        ],
    ),
}


def install(site: Path) -> list[Path]:
    """Apply EDITS under `site` (site-packages); returns the files written (and the helper)."""
    return lazy_hub_imports.install(site, EDITS, label="lazy_server_imports")
