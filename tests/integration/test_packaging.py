"""The distribution as the package index gets it: `python -m build` makes the sdist, then the
wheel from the sdist alone (so a file missing from the sdist breaks the wheel), in isolated
build environments; each installs into a fresh virtualenv under the distribution name
``berth-jupyter`` ("berth" on the index is an unrelated project) with the ``berth`` command,
the ``berth`` import name, the entry points JupyterHub looks up and the files Berth reads at
run time (the image stack, py.typed). Dependencies are left out (``--no-deps``): what is
checked is Berth's own packaging, in seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import docker
import pytest
from deployment import deployment
from hub_users import BrowserUser

from berth.images import catalog
from berth.images.builder import SOURCE_LABEL
from berth.versions import BERTH_VERSION

# No engine, but PyPI: the isolated builds fetch setuptools (as any sdist or wheel build does).
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NAME = "berth-jupyter"
ENTRY_POINTS = {
    ("console_scripts", "berth"): "berth.cli:main",
    ("jupyterhub.spawners", "berth"): "berth.spawner:ContainerSpawner",
    ("jupyterhub.spawners", "berth-system-users"): "berth.spawner:SystemUserSpawner",
    ("jupyterhub.spawners", "berth-swarm"): "berth.spawner:SwarmSpawner",
    ("jupyterhub.authenticators", "berth-native"): "berth.auth.native:BerthNativeAuthenticator",
    ("jupyterhub.authenticators", "berth-oidc"): "berth.auth.oidc:BerthOIDCAuthenticator",
    ("jupyterhub.authenticators", "berth-github"): "berth.auth.github:BerthGitHubAuthenticator",
}
PROBE = """
import json, sys
from importlib import metadata
import berth.versions
from berth.images import catalog
dist = metadata.distribution(sys.argv[1])
print(json.dumps({
    "name": dist.metadata["Name"],
    "version": dist.version,
    "import": berth.versions.BERTH_VERSION,
    "entry_points": sorted([ep.group, ep.name, ep.value] for ep in dist.entry_points),
    "hub_dockerfile": (catalog.get("hub").context_dir / "Dockerfile").is_file(),
    "py_typed": (catalog.STACK_DIR.parents[1] / "py.typed").is_file(),
    "requires_jupyterhub": [r for r in dist.requires if r.startswith("jupyterhub<")],
}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_the_files_carry_the_distribution_name(built: dict[str, Path]):
    normalized = NAME.replace("-", "_")
    assert built["sdist"].name == f"{normalized}-{BERTH_VERSION}.tar.gz"
    assert built["wheel"].name == f"{normalized}-{BERTH_VERSION}-py3-none-any.whl"
    with tarfile.open(built["sdist"]) as sdist:
        names = sdist.getnames()
    root = f"{normalized}-{BERTH_VERSION}"
    for wanted in ("pyproject.toml", "README.md", "berth/images/stack/hub/Dockerfile"):
        assert f"{root}/{wanted}" in names, wanted
    with zipfile.ZipFile(built["wheel"]) as wheel:
        listed = wheel.namelist()
    assert not [n for n in listed if n.startswith("tests/")]  # only Berth itself
    assert "berth/deploy/proxy_tls.js" in listed


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_installs_in_a_fresh_virtualenv(kind: str, built: dict[str, Path], tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
         str(built[kind])],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    probe = subprocess.run(
        [python, "-c", PROBE, NAME], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout)
    assert (found["name"], found["version"], found["import"]) == (NAME, BERTH_VERSION,
                                                                  BERTH_VERSION)  # fmt: skip
    assert {(g, n): v for g, n, v in found["entry_points"]} == ENTRY_POINTS
    assert found["hub_dockerfile"] and found["py_typed"]
    assert found["requires_jupyterhub"] == ["jupyterhub<7,>=5.5"]
    assert (venv / "bin" / "berth").is_file()


ENTRY_POINTS_OF = """
import json, sys
from importlib import metadata
dist = metadata.distribution(sys.argv[1])
print(json.dumps(sorted([ep.group, ep.name, ep.value] for ep in dist.entry_points)))
"""


def test_a_wheel_install_gives_the_hub_image_a_project_to_install(
    built: dict[str, Path], tmp_path: Path
):
    """Without a checkout, the hub image's copy of Berth gets a pyproject.toml written from the
    installed metadata (berth/images/project.py); installed without dependencies from that
    source tree, as the hub's Dockerfile does (there with uv; pip here, the same build backend),
    it has the same name, version and entry points."""
    venvs = {}
    for name in ("user", "hub"):
        venvs[name] = tmp_path / name
        subprocess.run([sys.executable, "-m", "venv", str(venvs[name])], check=True, timeout=120)
    user = str(venvs["user"] / "bin" / "python")
    pip = ["-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check"]
    subprocess.run([user, *pip, str(built["wheel"])], check=True, capture_output=True, timeout=600)
    # The file's text, read in the process that wrote it (its directory goes at that exit).
    written = subprocess.run(
        [user, "-c", "from berth.images import project; "
         "print(project.written_pyproject().read_text(), end='')"],
        check=True, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    ).stdout  # fmt: skip
    site = subprocess.run(
        [user, "-c", "import berth, os; print(os.path.dirname(berth.__file__))"],
        check=True, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    source = tmp_path / "berth-src"
    shutil.copytree(site, source / "berth", ignore=shutil.ignore_patterns("__pycache__"))
    (source / "pyproject.toml").write_text(written)
    hub = str(venvs["hub"] / "bin" / "python")
    install = subprocess.run([hub, *pip, str(source)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    found = subprocess.run(
        [hub, "-c", ENTRY_POINTS_OF, NAME], check=True, capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert {(g, n): v for g, n, v in json.loads(found)} == ENTRY_POINTS
    assert (venvs["hub"] / "bin" / "berth").is_file()


DIGEST = "from berth.images.builder import source_digest; print(source_digest())"


def test_berth_up_from_a_wheel_install(built: dict[str, Path], tmp_path: Path):
    """The whole service from the wheel as a person installs it (`pip install berth-jupyter`, not
    editable, its dependencies from the index): `berth up` from that virtualenv builds the hub
    image from the installed package alone (its Dockerfiles, scripts and package data), the
    admin logs in, starts a server and reaches JupyterLab, and `berth down` stops it all. Only
    the hub image's last layers are built again (the installed copy's digest differs from the
    checkout's); the notebook images and the hub's system layers come from the cache.

    Takes the deployment lock (tests/deployment.py); run it under the hub-image lock too, since
    it replaces ``berth/hub:latest`` (the next `berth up` from a checkout builds it again)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(built["wheel"])],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    where = subprocess.run(
        [python, "-c", "import berth; print(berth.__file__)"],
        check=True, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(str(venv)), where  # the installed copy, not this checkout
    installed_digest = subprocess.run(
        [python, "-c", DIGEST], check=True, capture_output=True, text=True, timeout=60,
        cwd=tmp_path,
    ).stdout.strip()  # fmt: skip

    with deployment(tmp_path / "deploy", python=python) as dep:
        client = docker.from_env()
        try:
            hub_image = client.images.get(catalog.HUB_IMAGE.tag("latest"))
            assert hub_image.labels[SOURCE_LABEL] == installed_digest  # built from the wheel
            assert client.containers.get("berth-hub").image.id == hub_image.id
            admin = BrowserUser(dep, "admin", dep.admin_password)
            admin.login()
            admin.spawn()
            admin.wait_for_lab(timeout=300)
            down = dep.berth("down", timeout=300)
            assert down.returncode == 0, down.stderr
            assert "stopped the service and 1 user server(s)" in down.stdout + down.stderr
            running = {c.name for c in client.containers.list()}
            assert not {"berth-hub", "berth-proxy"} & running, running
            mine = {"label": ["berth.user=admin"], "network": [dep.config["network"]]}
            assert client.containers.list(filters=mine) == []
        finally:
            client.close()
