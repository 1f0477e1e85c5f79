"""Runs code in a Jupyter kernel over its websocket and collects what it prints; says so when
the kernel dies on the way (a restart, an OOM kill), instead of waiting for a reply that will
not come. For :meth:`hub_harness.Hub.execute`; tests/integration/kernel_client.py is the fuller
client (replies, results, errors, TLS) the deployment tests use.
"""

from __future__ import annotations

import json
import time
import uuid

KERNEL_DIED = "\n<kernel died>"


def run_code(base_url: str, kernel_id: str, token: str, code: str, timeout: float) -> str:
    """A minimal Jupyter kernel websocket client: execute ``code``, collect stdout."""
    import websocket  # websocket-client

    ws_url = base_url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(
        ws_url, header=[f"Authorization: token {token}"], timeout=timeout
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": "berth-test",
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": False},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            kind = msg["header"]["msg_type"]
            state = msg.get("content", {}).get("execution_state")
            if kind == "status" and state in {"restarting", "dead", "autorestarting"}:
                return "".join(out) + KERNEL_DIED
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
        raise TimeoutError(f"kernel did not finish within {timeout}s; output so far: {out}")
    finally:
        ws.close()
