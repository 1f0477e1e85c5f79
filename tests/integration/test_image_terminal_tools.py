"""The command-line tools a person in a notebook terminal expects, in minimal-notebook, each used
for real as the notebook user: ps and top see the server, less pages a file, vi edits one, git
commits, curl asks the server's own API (on the container's loopback).

Fails on main before procps was added: neither ps nor top was in the image.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websocket
from stack_images import Server, stack_image, start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(docker_client: Any, run_container_module: Any) -> Iterator[Server]:
    yield start_server(run_container_module, stack_image(docker_client, "minimal-notebook"))


def run(server: Server, script: str) -> str:
    code, output = server.exec(script, timeout=60)
    assert code == 0, output
    return output


def test_ps_lists_the_server_process(server: Server) -> None:
    lines = run(server, "ps -eo user:12,comm").splitlines()
    assert "jovyan       jupyter-lab" in [line.rstrip() for line in lines], lines


def test_top_shows_a_batch_snapshot(server: Server) -> None:
    output = run(server, "top -b -n 1 -w 200")
    assert output.startswith("top - "), output
    assert "PID USER" in output and "jupyter-lab" in output, output


def test_less_pages_a_file(server: Server) -> None:
    assert run(server, "seq 1 500 > numbers && less -F numbers | tail -1").strip() == "500"


def test_editors_edit_a_file(server: Server) -> None:
    output = run(
        server,
        "printf 'colour\\n' > notes && vi -e -s -c '%s/colour/color/' -c wq notes && cat notes"
        " && nano --version | head -1",
    )
    assert output.splitlines()[0] == "color" and "nano" in output.splitlines()[1], output


def test_git_commits(server: Server) -> None:
    output = run(
        server,
        "git init -q project && cd project && echo hi > a && git add a && "
        "git -c user.name=Jo -c user.email=jo@example.org commit -q -m first && "
        "git log --format=%s",
    )
    assert output.strip() == "first", output


def test_curl_reaches_the_servers_own_api(server: Server) -> None:
    output = run(
        server,
        f"curl -sS -H 'Authorization: token {server.token}' http://127.0.0.1:8888/api/status",
    )
    assert "started" in json.loads(output), output


def test_the_tools_work_in_a_jupyterlab_terminal(server: Server) -> None:
    """The same tools through a real terminal of the server (/api/terminals + its websocket)."""
    status, _, body = server.get("api/terminals")
    assert status == 200, body
    answer = server.post_terminal()
    ws = websocket.create_connection(
        server.url.replace("http", "ws", 1) + f"terminals/websocket/{answer['name']}",
        header=[f"Authorization: token {server.token}"],
        timeout=30,
        http_proxy_host=None,
        http_no_proxy=["*"],
    )
    try:
        command = (
            "for t in ps top less vi nano git curl; do command -v $t >/dev/null && echo have-$t;"
            " done; ps -o comm= -C jupyter-lab\r"
        )
        ws.send(json.dumps(["stdin", command]))
        seen, deadline = "", time.monotonic() + 30
        wanted = [f"have-{tool}" for tool in ("ps", "top", "less", "vi", "nano", "git", "curl")]
        while time.monotonic() < deadline and not (
            all(word in seen for word in wanted) and seen.count("jupyter-lab") >= 2
        ):
            ws.settimeout(max(deadline - time.monotonic(), 0.1))
            message = json.loads(ws.recv())
            if message[0] == "stdout":
                seen += message[1]
        assert all(word in seen for word in wanted), seen
        assert seen.count("jupyter-lab") >= 2, seen  # the echoed command and ps's answer
    finally:
        ws.close()
