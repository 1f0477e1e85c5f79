"""base-notebook's berth-kernel command: names, where environments go, their kernel specs.

(Creating an environment needs the package index and the image: tests/integration/
test_kernel_envs.py does it in a real server through a hub.)"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
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


def load_first_use() -> ModuleType:
    path = str(STACK / "berth-first-use-kernel")
    loader = importlib.machinery.SourceFileLoader("berth_first_use_kernel", path)
    spec = importlib.util.spec_from_loader("berth_first_use_kernel", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


first_use = load_first_use()


def test_languages_go_where_berth_kernel_keeps_environments() -> None:
    for environ in (
        {"HOME": "/h"},
        {"HOME": "/h", "JUPYTERHUB_ROOT_DIR": "/w"},
        {"HOME": "/h", "JUPYTERHUB_ROOT_DIR": "/w", "BERTH_ENVS_DIR": "/e"},
    ):
        assert first_use.envs_root(environ) == bk.envs_root(environ)
    assert first_use.language_dir("deno", {"BERTH_ENVS_DIR": "/e"}) == Path("/e/.languages/deno")


def test_a_half_done_installation_is_not_taken_for_an_installed_language(tmp_path: Path) -> None:
    environ = {"BERTH_ENVS_DIR": str(tmp_path)}
    home = tmp_path / ".languages" / "deno"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "deno").touch()
    assert first_use.installed("deno", environ) is None  # no completion mark: done again
    (home / first_use.COMPLETE).write_text("deno==2.9.8\n")
    assert first_use.installed("deno", environ) == home / "bin" / "deno"


def test_download_progress_is_shown_in_tenths() -> None:
    job = first_use.Installation("deno", {"BERTH_ENVS_DIR": "/nowhere"})
    shown = [job._percent(f"Progress {n} of 1000\n") for n in (0, 50, 99, 100, 420, 999, 1000)]
    assert shown == ["Downloading: 0%", "", "", "Downloading: 10%", "Downloading: 40%",
                     "Downloading: 90%", "Downloading: 100%"]  # fmt: skip
    assert job._percent("Progress of nothing\n") == ""


@pytest.mark.parametrize("name", sorted(first_use.LANGUAGES))
def test_each_language_has_its_kernel_spec(name: str) -> None:
    spec = json.loads((STACK / "kernels" / name / "kernel.json").read_text())
    assert spec["argv"] == ["/usr/local/bin/berth-first-use-kernel", name, "{connection_file}"]
    assert spec["display_name"] == f"{first_use.LANGUAGES[name].display} (installs on first use)"


def test_relocation_points_links_and_system_paths_into_the_users_directory(tmp_path: Path) -> None:
    """What R's Debian packages need when unpacked into a home instead of /."""
    home = tmp_path / "r"
    (home / "usr/lib/R/etc").mkdir(parents=True)
    (home / "usr/lib/R/bin").mkdir(parents=True)
    (home / "etc/R").mkdir(parents=True)
    (home / "usr/lib/R/etc/Renviron.ucf").write_text(
        "R_LIBS_SITE=/usr/local/lib/R/site-library:/usr/lib/R/site-library\n"
    )
    (home / "usr/lib/R/etc/Renviron").symlink_to("/etc/R/Renviron")  # made by ucf in /
    (home / "usr/lib/R/etc/elsewhere").symlink_to("/usr/share/zoneinfo")  # not in the tree
    (home / "usr/lib/R/bin/R").write_text(
        'R_HOME_DIR=/usr/lib/R\nR_SHARE_DIR="/usr/share/R/share"\n# /usr/lib/Rx /x/usr/lib/R\n'
    )
    for name in ("ldpaths", "Makeconf"):
        (home / "etc/R" / name).write_text(": ${R_LD_LIBRARY_PATH=/usr/lib/R/lib}\n")
    first_use.relocate(home, first_use.LANGUAGES["r"])
    assert os.readlink(home / "usr/lib/R/etc/Renviron") == str(home / "etc/R/Renviron")
    assert os.readlink(home / "usr/lib/R/etc/elsewhere") == "/usr/share/zoneinfo"
    assert (home / "usr/lib/R/etc/Renviron").read_text() == (
        f"R_LIBS_SITE={home}/usr/local/lib/R/site-library:{home}/usr/lib/R/site-library\n"
    )
    assert (home / "usr/lib/R/bin/R").read_text() == (
        f'R_HOME_DIR={home}/usr/lib/R\nR_SHARE_DIR="{home}/usr/share/R/share"\n'
        "# /usr/lib/Rx /x/usr/lib/R\n"  # only whole system paths
    )
    assert (
        home / "etc/R/ldpaths"
    ).read_text() == f": ${{R_LD_LIBRARY_PATH={home}/usr/lib/R/lib}}\n"


def test_the_installed_kernel_finds_the_languages_libraries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/x")
    env = first_use.kernel_environment(Path("/h/r"), first_use.LANGUAGES["r"])
    dirs = env["LD_LIBRARY_PATH"].split(":")
    assert dirs[0].startswith("/h/r/usr/lib/") and dirs[-2:] == ["/h/r/usr/lib/R/lib", "/opt/x"]
    deno = first_use.kernel_environment(Path("/h/d"), first_use.LANGUAGES["deno"])
    assert deno["LD_LIBRARY_PATH"] == "/opt/x"
