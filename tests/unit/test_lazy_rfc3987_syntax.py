"""base-notebook's lazy rfc3987_syntax against the published package it replaces.

Both are imported in fresh interpreters (subprocesses), the published one from this venv (Berth's
hub dependencies bring rfc3987-syntax 1.1.0 and lark), the lazy one as slim_venv.py installs it:
its two files over a copy of the published package. No timing is asserted: what is asserted is
that importing builds nothing (lark not even imported) and that every name gives the same answers.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

STACK = Path(__file__).resolve().parents[2] / "berth" / "images" / "stack" / "base-notebook"
SPEC = importlib.util.find_spec("rfc3987_syntax")
pytestmark = pytest.mark.skipif(SPEC is None, reason="rfc3987_syntax is not installed")

SAMPLES = [
    "http://example.com/ü?q=1#f",
    "//host/p",
    "a b",
    "http://[::1]:80/",
    "mailto:x@y",
    "",
    "http://[bad",
    "10.0.0.256",
    "ab%zz",
    "../a/b?c",
]

PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import rfc3987_syntax as package
lark_at_import = "lark" in sys.modules
samples = json.loads(sys.argv[2])
answers = {
    f"{term}:{text}": package.is_valid_syntax(term, text)
    for term in ("iri", "iri_reference", "absolute_iri") for text in samples
}
names = sorted(name for name in dir(package) if not name.startswith("_"))
for name in names:
    if name.startswith("is_valid_syntax_"):
        for text in samples:
            answers[f"{name}:{text}"] = getattr(package, name)(text)
print(json.dumps({
    "lark_at_import": lark_at_import,
    "names": names,
    "answers": answers,
    "terms": package.RFC3987_SYNTAX_TERMS,
    "grammar": package.grammar,
    "parser": type(package.syntax_parser).__name__,
}))
"""


def probe(path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), json.dumps(SAMPLES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert SPEC is not None and SPEC.origin is not None
    root = tmp_path_factory.mktemp("published")
    shutil.copytree(Path(SPEC.origin).parent, root / "rfc3987_syntax")
    return root


@pytest.fixture(scope="module")
def lazy(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lazy")
    shutil.copytree(published / "rfc3987_syntax", root / "rfc3987_syntax")
    shutil.rmtree(root / "rfc3987_syntax" / "__pycache__", ignore_errors=True)
    for name in ("__init__.py", "syntax_helpers.py"):
        shutil.copyfile(STACK / "lazy_rfc3987_syntax" / name, root / "rfc3987_syntax" / name)
    return root


def test_the_published_file_is_the_one_the_lazy_module_was_written_for(published: Path) -> None:
    sys.path.insert(0, str(STACK))
    try:
        import slim_venv
    finally:
        sys.path.remove(str(STACK))
    import hashlib

    helpers = published / "rfc3987_syntax" / "syntax_helpers.py"
    assert hashlib.sha256(helpers.read_bytes()).hexdigest() == (
        slim_venv.RFC3987_SYNTAX_HELPERS_SHA256
    )


def test_lazy_import_builds_nothing_and_every_name_answers_as_published(
    published: Path, lazy: Path
) -> None:
    """Fails without the lazy module: the published import loads lark and builds its parsers."""
    eager, quick = probe(published), probe(lazy)
    assert eager["lark_at_import"] is True  # what the lazy module is for
    assert quick["lark_at_import"] is False
    # The lazy module adds its own helpers' names; every published name is there.
    assert set(eager["names"]) <= set(quick["names"])
    assert {k: v for k, v in quick.items() if k != "names" and k != "lark_at_import"} == {
        k: v for k, v in eager.items() if k != "names" and k != "lark_at_import"
    }
