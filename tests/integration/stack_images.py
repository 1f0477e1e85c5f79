"""One stack image's server, run for the tests of what that image adds (tools, conversion, kernels).

The images are `<prefix>/<name>:latest` with the prefix from BERTH_TEST_STACK_PREFIX (default
`berth`; `berth images build NAME --prefix P` builds a stack beside the team's berth/* images).
A server listens on a 127.0.0.1 published port only; notebooks are real nbformat-4 files put
into the container and executed or converted there.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
from loopback_ports import free_port

BOOT_TIMEOUT = 120  # seconds: a busy 2-CPU machine
TOKEN = "stack-images-test-token"
WORK = "/home/jovyan/work"


def stack_image(client: Any, name: str) -> str:
    """The ref of stack image `name` under test; the test is skipped when it is not built."""
    import docker

    prefix = os.environ.get("BERTH_TEST_STACK_PREFIX", "berth")
    ref = f"{prefix}/{name}:latest"
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{ref} is not built (berth images build {name} [--prefix {prefix}])")
    return ref


def _request(
    url: str, token: str, method: str = "GET", timeout: float = 60
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"token {token}"}
    request = urllib.request.Request(url, headers=headers, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


@dataclass
class Server:
    container: Any
    url: str  # ends with '/'
    token: str = TOKEN

    def exec(self, script: str, user: str = "jovyan", timeout: int = 600) -> tuple[int, str]:
        """Runs a bash script in the container (bounded by `timeout`); (status, stdout+stderr)."""
        command = ["timeout", str(timeout), "bash", "-c", script]
        code, output = self.container.exec_run(command, user=user, workdir=WORK)
        return code, output.decode(errors="replace")

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Writes a file owned by jovyan (1000:100) into the container."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(os.path.basename(path))
            info.size, info.mode, info.uid, info.gid = len(data), mode, 1000, 100
            tar.addfile(info, io.BytesIO(data))
        assert self.container.put_archive(os.path.dirname(path), buffer.getvalue())

    def read(self, path: str) -> bytes:
        chunks, _ = self.container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            assert member is not None
            return member.read()

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return _request(self.url + path.lstrip("/"), self.token)

    def post_terminal(self) -> dict[str, Any]:
        """Opens a terminal as JupyterLab's launcher does; returns its model ({"name": …})."""
        status, _, body = _request(self.url + "api/terminals", self.token, "POST")
        assert status == 200, body
        return json.loads(body)


def start_server(run_container: Any, image: str) -> Server:
    """`docker run` of the image with a known token; returns once /api/status answers 200."""
    port = free_port()
    container = run_container(
        image,
        ports={"8888/tcp": ("127.0.0.1", port)},
        environment={"NOTEBOOK_ARGS": f"--IdentityProvider.token={TOKEN}"},
        healthcheck={"test": ["NONE"]},
    )
    server = Server(container, f"http://127.0.0.1:{port}/")
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if server.get("api/status")[0] == 200:
                server.exec(f"mkdir -p {WORK}")
                return server
        except (OSError, urllib.error.URLError):
            pass
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.5)
    logs = container.logs().decode(errors="replace")[-3000:]
    raise AssertionError(f"{image}: no server within {BOOT_TIMEOUT}s:\n{logs}")


def notebook(
    cells: list[tuple[str, str]], kernel: str = "python3", language: str = "python"
) -> bytes:
    """A real nbformat-4.5 notebook: (cell type, source) pairs, no outputs yet."""
    built = []
    for number, (kind, source) in enumerate(cells):
        cell: dict[str, Any] = {"cell_type": kind, "id": f"cell-{number}", "metadata": {}}
        cell["source"] = source
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        built.append(cell)
    display = {"python3": "Python 3 (ipykernel)", "ir": "R"}.get(kernel, kernel)
    document = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": kernel, "display_name": display, "language": language},
            "language_info": {"name": language},
        },
        "cells": built,
    }
    return json.dumps(document, indent=1).encode()


def execute_notebook(server: Server, name: str, data: bytes, timeout: int = 600) -> dict[str, Any]:
    """Puts the notebook into ~/work and runs every cell with `jupyter nbconvert --execute`
    (the kernel named in its metadata); returns the executed notebook as JSON."""
    server.put(f"{WORK}/{name}", data)
    stem = name.removesuffix(".ipynb")
    code, output = server.exec(
        f"jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout={timeout} "
        f"--output {stem}.executed.ipynb {name}",
        timeout=timeout + 60,
    )
    assert code == 0, output
    return json.loads(server.read(f"{WORK}/{stem}.executed.ipynb"))


def outputs_text(executed: dict[str, Any]) -> list[str]:
    """Per code cell, everything it showed: streams, text/plain results, errors."""
    texts = []
    for cell in executed["cells"]:
        if cell["cell_type"] != "code":
            continue
        parts = []
        for output in cell["outputs"]:
            if output["output_type"] == "stream":
                parts.append("".join(output["text"]))
            elif output["output_type"] in ("execute_result", "display_data"):
                parts.append("".join(output["data"].get("text/plain", "")))
            elif output["output_type"] == "error":
                parts.append(f"{output['ename']}: {output['evalue']}")
        texts.append("".join(parts))
    return texts


def output_types(executed: dict[str, Any]) -> list[set[str]]:
    """Per code cell, the MIME types of its rich outputs (e.g. image/png for a plot)."""
    return [
        {kind for output in cell["outputs"] for kind in output.get("data", {})}
        for cell in executed["cells"]
        if cell["cell_type"] == "code"
    ]
