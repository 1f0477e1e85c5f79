"""base-notebook's lazy imports in every Jupyter server (lazy_server_imports.py), against the
published packages.

jsonschema's edit is applied, as slim_venv.py applies it, to a copy of the jsonschema this
test runs with (the release the image pins, checked by sha256), and both copies are imported in
fresh interpreters: the edited one loads rfc3986_validator only when a "uri" value is checked,
and gives the published answers. The listings handler's edit is checked in the image
(tests/integration/test_image_speed.py: jupyterlab_server is not installed here).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

STACK = Path(__file__).resolve().parents[2] / "berth" / "images" / "stack" / "base-notebook"
FORMAT = "jsonschema/_format.py"

PROBE = r"""
import json, sys
import jsonschema
before = "rfc3986_validator" in sys.modules
checker = jsonschema.FormatChecker()
values = ["https://example.org/a?b#c", "urn:isbn:0451450523", "no scheme", "http://[bad",
          "../a/b?c", "#frag", "", 7]
answers = {f"{fmt} {value!r}": checker.conforms(value, fmt)
           for fmt in ("uri", "uri-reference") for value in values}
print(json.dumps({"loaded at import": before, "loaded after": "rfc3986_validator" in sys.modules,
                  "answers": answers}))
"""


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(STACK))  # lazy_server_imports imports lazy_hub_imports beside it
    try:
        spec = importlib.util.spec_from_file_location(name, STACK / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(STACK))


def run(site: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env={"PYTHONPATH": str(site)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.find_spec("jsonschema")
    assert spec is not None and spec.submodule_search_locations
    root = tmp_path_factory.mktemp("published")
    shutil.copytree(spec.submodule_search_locations[0], root / "jsonschema",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return root


@pytest.fixture(scope="module")
def lazy(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    edits = load("lazy_server_imports").EDITS
    if hashlib.sha256((published / FORMAT).read_bytes()).hexdigest() != edits[FORMAT][0]:
        pytest.skip("this environment's jsonschema is not the release the image pins")
    root = tmp_path_factory.mktemp("lazy")
    shutil.copytree(published / "jsonschema", root / "jsonschema")
    written = load("lazy_hub_imports").install(root, {FORMAT: edits[FORMAT]}, "test")
    assert sorted(p.relative_to(root).as_posix() for p in written) == [
        "berth_lazy_names.py",
        FORMAT,
    ]
    return root


def test_uri_checks_load_rfc3986_validator_when_used_and_answer_as_published(
    published: Path, lazy: Path
) -> None:
    """Fails without the edit: importing jsonschema compiles rfc3986_validator's expressions."""
    eager, quick = run(published), run(lazy)
    assert eager["loaded at import"] is True  # what the edit is for
    assert quick["loaded at import"] is False
    assert quick["loaded after"] is True
    assert quick["answers"] == eager["answers"]
    assert quick["answers"]["uri 'no scheme'"] is False  # the checker really checks
    assert quick["answers"]["uri 'https://example.org/a?b#c'"] is True


def test_a_lazy_function_imports_on_first_call() -> None:
    names = load("berth_lazy_names")
    sys.modules.pop("colorsys", None)
    rgb_to_hsv = names.lazy_function("colorsys", "rgb_to_hsv")
    assert "colorsys" not in sys.modules
    assert rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules
    with pytest.raises(ImportError):  # as `from missing import name` would, at once
        names.lazy_function("berth_no_such_module", "anything")


def test_another_release_stops_the_build(tmp_path: Path) -> None:
    """A file that is not the one the edits were written for is refused, never patched."""
    for relative in load("lazy_server_imports").EDITS:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("import requests\n")
    with pytest.raises(SystemExit, match=r"lazy_server_imports: .* not the file these edits"):
        load("lazy_server_imports").install(tmp_path)


def test_a_lazy_instance_is_made_on_first_use() -> None:
    names = load("berth_lazy_names")
    made: list[tuple] = []

    class Client:
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append((args, kwargs))
            self.timeout = 5

        def get(self, url: str) -> str:
            return f"GET {url}"

    client = names.LazyInstance(Client, 1, proxy="p")
    assert made == []
    assert "made on first use" in repr(client)
    assert client.get("/x") == "GET /x" and client.timeout == 5
    client.timeout = 7
    assert client.timeout == 7
    assert made == [((1,), {"proxy": "p"})]  # made once, with the arguments given
