"""base-notebook's berth-kernel command: names, where environments go, their kernel specs.

(Creating an environment needs the package index and the image: tests/integration/
test_kernel_envs.py does it in a real server through a hub.)"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

STACK = Path(__file__).resolve().parents[2] / "berth" / "images" / "stack" / "base-notebook"


def load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("berth_kernel", str(STACK / "berth-kernel"))
    spec = importlib.util.spec_from_loader("berth_kernel", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


bk = load()


@pytest.mark.parametrize("name", ["tools", "py-old", "a", "x_1", "0" * 40])
def test_good_names(name: str) -> None:
    assert bk.check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "..", "../x", "a/b", "Tools", "-x", "_x", ".jupyter", "a b", "ü", "x\n", "0" * 41]
)
def test_names_that_could_leave_the_directory_or_confuse_jupyter_are_refused(name: str) -> None:
    with pytest.raises(bk.Refused, match="not a valid environment name"):
        bk.check_name(name)


def test_where_environments_go() -> None:
    """The same three cases as jupyter_server_config.py's own test: both compute the place."""
    assert bk.envs_root({"HOME": "/home/jovyan"}) == Path("/home/jovyan/.envs")
    hub = {"HOME": "/home/jovyan", "JUPYTERHUB_ROOT_DIR": "/home/jovyan/work"}
    assert bk.envs_root(hub) == Path("/home/jovyan/work/.envs")
    assert bk.envs_root({**hub, "BERTH_ENVS_DIR": "/srv/e"}) == Path("/srv/e")


def test_the_kernel_spec_runs_the_environments_python_with_its_bin_first() -> None:
    env = Path("/home/jovyan/work/.envs/tools")
    assert bk.kernel_spec("tools", env) == {
        "argv": [f"{env}/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (tools)",
        "language": "python",
        "env": {"PATH": f"{env}/bin:${{PATH}}", "VIRTUAL_ENV": str(env)},
        "metadata": {"debugger": True, "berth_env": str(env)},
    }


def test_list_and_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / "tools"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").touch()
    bk.write_spec(tmp_path / ".jupyter" / "kernels" / "tools", bk.kernel_spec("tools", env), env)
    spec = json.loads((tmp_path / ".jupyter/kernels/tools/kernel.json").read_text())
    assert spec["metadata"]["berth_env"] == str(env)
    bk.list_envs(tmp_path)
    assert capsys.readouterr().out == f"tools\t{env}\n"
    with pytest.raises(bk.Refused, match="no environment 'other'"):
        bk.remove(tmp_path, "other")
    bk.remove(tmp_path, "tools")
    assert not env.exists() and not (tmp_path / ".jupyter/kernels/tools").exists()


def test_create_refuses_an_existing_environment(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    with pytest.raises(bk.Refused, match="exists already"):
        bk.create(tmp_path, "tools", [])
