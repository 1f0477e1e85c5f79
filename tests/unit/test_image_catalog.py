"""The stack's order, build arguments, build contexts and the build stream parser."""

import io
import re
import tarfile
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from berth.errors import BerthError
from berth.images import catalog
from berth.images.builder import (
    BuildEvent,
    BuildOptions,
    build_args,
    make_context,
    parse_stream,
    tag_names,
)
from berth.images.osbase import mmdebstrap_command
from berth.versions import (
    BERTH_VERSION,
    JUPYTERHUB_HUB_VERSION,
    JUPYTERHUB_SINGLEUSER_VERSION,
    JUPYTERHUB_SUPPORTED,
    JUPYTERHUB_TESTED,
    PINS,
    UV_VERSION,
)

REPO = Path(__file__).resolve().parents[2]


def test_build_order_includes_parents_first():
    order = [image.name for image in catalog.build_order(["scipy-notebook"])]
    assert order == ["foundation", "base-notebook", "minimal-notebook", "scipy-notebook"]
    assert [i.name for i in catalog.build_order(["berth/base-notebook:latest"])] == [
        "foundation",
        "base-notebook",
    ]
    assert catalog.build_order([], everything=True) == list(catalog.STACK)


def test_a_bare_build_leaves_out_the_spark_and_tensorflow_images():
    """`berth images build` (and so CI) builds the stack without the big data-science images;
    naming one builds it with its parents."""
    heavy = {"pyspark-notebook", "all-spark-notebook", "tensorflow-notebook"}
    default = [image.name for image in catalog.build_order([])]
    assert default == [image.name for image in catalog.STACK if image.name not in heavy]
    assert [image.name for image in catalog.build_order(["all-spark-notebook"])] == [
        "foundation",
        "base-notebook",
        "minimal-notebook",
        "scipy-notebook",
        "pyspark-notebook",
        "all-spark-notebook",
    ]
    assert [image.name for image in catalog.build_order(["tensorflow-notebook"])][-2:] == [
        "scipy-notebook",
        "tensorflow-notebook",
    ]


def test_unknown_image_is_refused_with_the_known_names():
    with pytest.raises(BerthError, match=r"unknown image 'datascience'.*base-notebook"):
        catalog.build_order(["datascience"])


def test_every_parent_is_an_earlier_image_and_has_a_dockerfile():
    seen: set[str] = set()
    for image in catalog.STACK:
        assert image.parent is None or image.parent in seen
        assert (image.context_dir / "Dockerfile").is_file()
        seen.add(image.name)


def test_build_args_chain_the_stack_at_one_version():
    options = BuildOptions(base_image="berth/os-base:bookworm", version="9.9")
    assert build_args(catalog.get("foundation"), options) == {
        "BASE_IMAGE": "berth/os-base:bookworm"
    }
    assert build_args(catalog.get("base-notebook"), options) == {
        "BASE_CONTAINER": "berth/foundation:9.9",
        "JUPYTERHUB_VERSION": JUPYTERHUB_SINGLEUSER_VERSION,
        "UV_VERSION": UV_VERSION,
    }
    assert build_args(catalog.get("hub"), options) == {
        "BASE_CONTAINER": "berth/foundation:9.9",
        "JUPYTERHUB_HUB_VERSION": JUPYTERHUB_HUB_VERSION,
        "UV_VERSION": UV_VERSION,
    }
    assert build_args(catalog.get("scipy-notebook"), options) == {
        "BASE_CONTAINER": "berth/minimal-notebook:9.9"
    }


def test_each_dockerfile_gets_exactly_the_version_pins_it_declares():
    """The catalog says which pins an image takes (no image special-cased by name in the
    builder): each declared pin is an ARG of its Dockerfile, and each *_VERSION ARG is pinned."""
    options = BuildOptions(version="9.9")
    for image in catalog.STACK:
        dockerfile = (image.context_dir / "Dockerfile").read_text()
        # ARG NAME_VERSION=default: the default is what a plain `docker build` uses.
        declared = dict(re.findall(r"^ARG ([A-Z_]+_VERSION)=(\S+)", dockerfile, re.MULTILINE))
        assert set(image.pins) == set(declared), image.name
        args = build_args(image, options)
        assert (
            {pin: args[pin] for pin in image.pins}
            == declared
            == {pin: PINS[pin] for pin in declared}
        )


def _members(buffer: io.BytesIO) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=buffer) as tar:
        return {member.name: member for member in tar.getmembers()}


def test_foundation_context_carries_the_ca_bundle_and_is_stable():
    first = make_context(catalog.get("foundation"), b"-----BEGIN CERTIFICATE-----\n")
    second = make_context(catalog.get("foundation"), b"-----BEGIN CERTIFICATE-----\n")
    assert first.getvalue() == second.getvalue()  # same bytes: the layer cache keeps hitting
    members = _members(first)
    assert "Dockerfile" in members
    assert members["extra-ca.crt"].size == len(b"-----BEGIN CERTIFICATE-----\n")
    assert all(member.mtime == 0 for member in members.values())
    empty = _members(make_context(catalog.get("foundation"), None))
    assert empty["extra-ca.crt"].size == 0
    assert "extra-ca.crt" not in _members(make_context(catalog.get("base-notebook"), b"x"))


def test_parse_stream_reports_steps_and_returns_the_id():
    chunks = [
        {"stream": "Step 1/2 : FROM debian\n"},
        {"stream": " ---> abc\n"},
        {"stream": "Step 2/2 : RUN true\n"},
        {"aux": {"ID": "sha256:feed"}},
    ]
    items = list(parse_stream("foundation", chunks))
    assert items[0] == BuildEvent("foundation", "step", "FROM debian", 1, 2)
    assert items[1] == BuildEvent("foundation", "output", " ---> abc")
    assert items[-1] == "sha256:feed"


def test_parse_stream_names_the_image_and_failed_step():
    chunks = [
        {"stream": "Step 3/9 : RUN pip install nope\n"},
        {"error": "boom", "errorDetail": {"message": "The command returned a non-zero code: 1"}},
    ]
    with pytest.raises(BerthError) as caught:
        list(parse_stream("base-notebook", chunks))
    message = str(caught.value)
    assert "base-notebook" in message
    assert "step 3/9 (RUN pip install nope)" in message
    assert "non-zero code: 1" in message


def test_a_failed_step_shows_its_own_last_output_lines():
    """The command's own error (here pip's) is in the message, not the earlier steps' output."""
    chunks = [
        {"stream": "Step 7/9 : COPY requirements.txt /tmp/\n"},
        {"stream": "copied, unrelated\n"},
        {"stream": "Step 8/9 : RUN pip install -r /tmp/requirements.txt\n"},
        *({"stream": f"Collecting package-{n}\n"} for n in range(30)),
        {"stream": "ERROR: No matching distribution found for nope==9\n"},
        {"error": "boom", "errorDetail": {"message": "The command returned a non-zero code: 1"}},
    ]
    with pytest.raises(BerthError) as caught:
        list(parse_stream("minimal-notebook", chunks))
    lines = str(caught.value).splitlines()
    assert lines[0] == (
        "building minimal-notebook failed at step 8/9 (RUN pip install -r /tmp/requirements.txt):"
    )
    assert lines[1:] == [
        *(f"  | Collecting package-{n}" for n in range(6, 30)),
        "  | ERROR: No matching distribution found for nope==9",
        "The command returned a non-zero code: 1",
    ]


def test_mmdebstrap_command_builds_a_slim_minbase():
    command = mmdebstrap_command("bookworm", "http://mirror/debian", Path("/tmp/x.tar"))
    assert command[0] == "mmdebstrap"
    assert "--variant=minbase" in command
    assert command[-3:] == ["bookworm", "/tmp/x.tar", "http://mirror/debian"]


def test_versions_agree_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f"jupyterhub{JUPYTERHUB_SUPPORTED}" in project["dependencies"]
    supported = SpecifierSet(JUPYTERHUB_SUPPORTED)
    images = (JUPYTERHUB_HUB_VERSION, JUPYTERHUB_SINGLEUSER_VERSION)
    assert [v for v in (*images, *JUPYTERHUB_TESTED) if v not in supported] == []
    # The tests cover the oldest and the newest major release of the range, and the test hubs
    # run each release an image carries.
    assert {Version(v).major for v in JUPYTERHUB_TESTED} == {5, 6}
    assert set(images) <= set(JUPYTERHUB_TESTED)
    dockerfile = (catalog.get("base-notebook").context_dir / "Dockerfile").read_text()
    assert f"ARG JUPYTERHUB_VERSION={JUPYTERHUB_SINGLEUSER_VERSION}" in dockerfile
    dockerfile = (catalog.HUB_IMAGE.context_dir / "Dockerfile").read_text()
    assert f"ARG JUPYTERHUB_HUB_VERSION={JUPYTERHUB_HUB_VERSION}" in dockerfile
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "JUPYTERHUB_HUB_VERSION" in setup  # the host runs the hub image's release
    assert BERTH_VERSION.count(".") == 2


def test_r_images_are_built_on_their_docker_stacks_parents():
    order = [image.name for image in catalog.build_order(["datascience-notebook"])]
    assert order == [
        "foundation",
        "base-notebook",
        "minimal-notebook",
        "scipy-notebook",
        "datascience-notebook",
    ]
    order = [image.name for image in catalog.build_order(["r-notebook"])]
    assert order == ["foundation", "base-notebook", "minimal-notebook", "r-notebook"]


def test_datascience_context_carries_r_notebooks_install_script():
    script = (catalog.STACK_DIR / "r-notebook" / "install-r.sh").read_bytes()
    members = _members(make_context(catalog.get("datascience-notebook"), None))
    assert set(members) == {"Dockerfile", "install-r.sh"}
    with tarfile.open(fileobj=make_context(catalog.get("datascience-notebook"), None)) as tar:
        borrowed = tar.extractfile("install-r.sh")
        assert borrowed is not None and borrowed.read() == script
    assert members["install-r.sh"].mode & 0o111  # the Dockerfile runs it directly


def test_all_spark_context_carries_the_same_r_install_script():
    script = (catalog.STACK_DIR / "r-notebook" / "install-r.sh").read_bytes()
    with tarfile.open(fileobj=make_context(catalog.get("all-spark-notebook"), None)) as tar:
        assert set(tar.getnames()) == {"Dockerfile", "install-r.sh"}
        borrowed = tar.extractfile("install-r.sh")
        assert borrowed is not None and borrowed.read() == script


def test_a_prefix_builds_and_chains_the_stack_beside_berth():
    options = BuildOptions(version="9.9", prefix="berth-alice")
    assert build_args(catalog.get("r-notebook"), options) == {
        "BASE_CONTAINER": "berth-alice/minimal-notebook:9.9"
    }
    assert catalog.get("r-notebook").tag("latest", "berth-alice") == "berth-alice/r-notebook:latest"
    assert catalog.check_prefix("berth-alice") == "berth-alice"


@pytest.mark.parametrize(
    "prefix", ["", "Berth", "berth/x", "berth:1", "-berth", "berth-", "a b", "x" * 65, "ber..th"]
)
def test_a_prefix_that_is_not_one_repository_component_is_refused(prefix):
    with pytest.raises(BerthError, match="is not a repository namespace"):
        catalog.check_prefix(prefix)


def test_images_list_rows_show_parents_tags_sizes_and_what_each_adds():
    from berth.cli.images import Built, list_rows

    found = {
        "foundation": [
            Built(
                ("p/foundation:0.1.0", "p/foundation:latest"), 139_000_000, "2026-11-26T18:22:01.5Z"
            )
        ],
        "base-notebook": [
            Built(("p/base-notebook:latest",), 523_000_000, "2026-11-26T20:16:00Z"),
            Built(("p/base-notebook:old",), 348_000_000, "2026-11-26T18:43:00Z"),
        ],
        "r-notebook": [
            Built(("p/r-notebook:latest", "other/r:1"), 971_000_000, "2026-11-26T20:40:00Z")
        ],
    }
    rows = list_rows(found, "p")
    assert rows[:3] == [
        ("foundation", "os base", "0.1.0, latest", "139 MB", "", "2026-11-26 18:22"),
        ("base-notebook", "foundation", "latest", "523 MB", "+384 MB", "2026-11-26 20:16"),
        ("base-notebook", "foundation", "old", "348 MB", "+209 MB", "2026-11-26 18:43"),
    ]
    by_name = {row[0]: row for row in rows}
    assert by_name["hub"] == ("hub", "foundation", "not built", "", "", "")
    # minimal-notebook is not built, so what r-notebook adds over it is unknown.
    assert by_name["r-notebook"] == (
        "r-notebook",
        "minimal-notebook",
        "latest",
        "971 MB",
        "",
        "2026-11-26 20:40",
    )


def test_images_whose_parents_are_built_are_ready_side_by_side():
    from berth.images.builder import ready_to_build

    order = catalog.build_order(["hub", "minimal-notebook"])
    names = lambda images: [image.name for image in images]  # noqa: E731
    assert names(ready_to_build(order, done=[], started=[])) == ["foundation"]
    assert names(ready_to_build(order, done=[], started=["foundation"])) == []
    # Once the foundation is built, the hub and base-notebook both need only it.
    assert names(ready_to_build(order, done=["foundation"], started=["foundation"])) == [
        "base-notebook",
        "hub",
    ]
    assert names(
        ready_to_build(
            order,
            done=["foundation", "base-notebook"],
            started=["foundation", "base-notebook", "hub"],
        )
    ) == ["minimal-notebook"]


def test_tag_names_make_the_short_name_mean_the_built_image_on_each_engine() -> None:
    assert tag_names("berth/hub:latest", "docker") == [("berth/hub", "latest")]
    # Podman resolves a short name to localhost/ first, where a loaded copy may be.
    assert tag_names("berth/hub:0.1.0", "podman") == [
        ("berth/hub", "0.1.0"),
        ("localhost/berth/hub", "0.1.0"),
    ]
    assert tag_names("registry.example:5000/berth/hub:latest", "podman") == [
        ("registry.example:5000/berth/hub", "latest")
    ]
    assert tag_names("localhost/berth/hub:latest", "podman") == [("localhost/berth/hub", "latest")]
