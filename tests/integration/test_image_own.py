"""An image of a user's own on Berth's scipy-notebook: the Dockerfile that docs/images.md shows
(docs/examples/own-image/, apt as root, pip as the notebook user) is built on the engine, then
started through the images' start scripts both ways people start them: as the notebook user
(`start-notebook.py`, a notebook using what was added), and as root with the start switches
(another user name and uid, sudo granted), where that user still owns what pip installed.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from stack_images import Server, execute_notebook, notebook, outputs_text, stack_image, start_server

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "own-image"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "images.md"

GRAPH = notebook(
    [
        (
            "code",
            "import graphviz\n"
            "graph = graphviz.Digraph()\n"
            "graph.edge('raw', 'clean')\n"
            "graph.edge('clean', 'report')\n"
            "svg = graph.pipe(format='svg').decode()\n"
            "print(svg.count('class=\"node\"'), svg.count('class=\"edge\"'))",
        ),
        ("code", "graph"),
    ]
)


def test_the_docs_show_the_tested_dockerfile() -> None:
    """docs/images.md carries the example verbatim, so what people copy is what is tested."""
    dockerfile = (EXAMPLE / "Dockerfile").read_text()
    blocks = re.findall(r"```dockerfile\n(.*?)```", DOCS.read_text(), re.S)
    assert dockerfile in blocks, "docs/images.md must show docs/examples/own-image/Dockerfile"


@pytest.fixture(scope="module")
def own_image(docker_client: Any) -> Iterator[str]:
    base = stack_image(docker_client, "scipy-notebook")
    tag = f"berth-test-own-image-{uuid.uuid4().hex[:8]}:latest"
    try:
        docker_client.images.build(
            path=str(EXAMPLE),
            tag=tag,
            buildargs={"BASE_CONTAINER": base},
            rm=True,
            forcerm=True,
            labels={"berth-test": __name__},
        )
        yield tag
    finally:
        # Not there when the build failed: nothing to remove then. Podman answers a missing
        # image's removal with "image not known", which the SDK raises as NotFound.
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.images.remove(tag)


@pytest.fixture(scope="module")
def own_server(own_image: str, run_container_module: Any) -> Iterator[Server]:
    yield start_server(run_container_module, own_image)


def test_a_notebook_uses_what_the_image_added(own_server: Server) -> None:
    """The pip package drives the apt package's `dot` from a kernel of the default start."""
    executed = execute_notebook(own_server, "graph.ipynb", GRAPH)
    texts = outputs_text(executed)
    assert texts[0] == "3 2\n", texts
    svg_outputs = [
        output["data"]["image/svg+xml"]
        for output in executed["cells"][1]["outputs"]
        if "image/svg+xml" in output.get("data", {})
    ]
    assert svg_outputs and "report" in "".join(svg_outputs[0]), executed["cells"][1]["outputs"]
    code, output = own_server.exec("id -un && find /home/jovyan /opt/venv ! -user jovyan | head")
    assert code == 0 and output == "jovyan\n", output


def test_the_start_switches_still_work_as_root(own_image: str, run_container: Any) -> None:
    """start.sh as root renames the user and changes its uid, grants sudo, then drops to that
    user: the command sees the new user, who can still pip-install into the environment (the
    Dockerfile's fix-permissions) and run the apt-installed tool."""
    script = (
        "id -un; id -u; sudo -n true && echo sudo-ok; dot -V 2>&1 | cut -d' ' -f1-4; "
        "python -c 'import graphviz; print(graphviz.__version__)'; "
        "test -w \"$(python -c 'import graphviz, os; print(os.path.dirname(graphviz.__file__))')\""
        " && echo venv-writable"
    )
    container = run_container(
        own_image,
        command=["bash", "-c", script],
        user="root",
        environment={"NB_USER": "alice", "NB_UID": "1234", "GRANT_SUDO": "yes"},
    )
    result = container.wait(timeout=120)
    logs = container.logs(stdout=True, stderr=False).decode()
    assert result["StatusCode"] == 0, container.logs().decode()
    assert logs.splitlines()[-6:] == [
        "alice",
        "1234",
        "sudo-ok",
        "dot - graphviz version",
        "0.21",
        "venv-writable",
    ], logs
