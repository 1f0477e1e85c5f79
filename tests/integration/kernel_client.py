"""A small Jupyter client for tests: REST calls and code execution in a real kernel.

It talks to a Jupyter server the way JupyterLab does: REST with `Authorization: token …` to start
a kernel, then the kernel's websocket (/api/kernels/<id>/channels, JSON messages of the Jupyter
messaging protocol) to run code and collect what the kernel sends back. Works with any base URL
(a hub's /user/<name>/ prefix) and with HTTPS servers using self-signed certificates.

    with KernelClient("http://127.0.0.1:8888/", token) as kernel:
        result = kernel.execute("print(1 + 1)")
        assert result.ok and result.stdout == "2\\n"
"""

from __future__ import annotations

import datetime
import json
import ssl
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import websocket  # websocket-client


def insecure_ssl_context() -> ssl.SSLContext:
    """For servers with self-signed certificates (GEN_CERT): encryption without verification."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class JupyterAPI:
    """REST calls to a Jupyter server (base_url ends with '/'), authenticated with a token."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.token = token
        self.timeout = timeout
        self.context = insecure_ssl_context() if self.base_url.startswith("https:") else None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(HTTP status, decoded JSON body or None); HTTP errors are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path.lstrip("/"), data=data, method=method)
        if self.token:
            req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.context)
        )
        try:
            with opener.open(req, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
            error.close()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")


@dataclass
class ExecutionResult:
    status: str = ""  # the execute_reply's status: ok, error or aborted
    stdout: str = ""
    stderr: str = ""
    results: list[str] = field(default_factory=list)  # text/plain of execute_result/display_data
    error: dict[str, Any] | None = None  # ename, evalue, traceback

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.error is None

    def describe(self) -> str:
        """Everything the kernel said, for assertion messages."""
        error = ""
        if self.error:
            error = f"\nerror: {self.error.get('ename')}: {self.error.get('evalue')}"
            error += "\n" + "\n".join(self.error.get("traceback", []))
        return f"status={self.status}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}{error}"


class KernelClient:
    """Starts a kernel on a Jupyter server, runs code in it, shuts it down (context manager)."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        kernel_name: str = "python3",
        timeout: float = 60,
    ) -> None:
        self.api = JupyterAPI(base_url, token, timeout=timeout)
        self.kernel_name = kernel_name
        self.timeout = timeout
        self.session = uuid.uuid4().hex
        self.kernel_id: str | None = None
        self.ws: websocket.WebSocket | None = None

    def __enter__(self) -> KernelClient:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def start(self) -> str:
        status, body = self.api.request("POST", "api/kernels", {"name": self.kernel_name})
        if status != 201:
            raise RuntimeError(f"starting a kernel failed: HTTP {status}: {body}")
        self.kernel_id = body["id"]
        ws_url = "ws" + self.api.base_url[len("http") :]
        ws_url += f"api/kernels/{self.kernel_id}/channels?session_id={self.session}"
        headers = [f"Authorization: token {self.api.token}"] if self.api.token else []
        sslopt = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        self.ws = websocket.create_connection(
            ws_url,
            header=headers,
            timeout=self.timeout,
            sslopt=sslopt,
            http_proxy_host=None,
            http_no_proxy=["*"],
        )
        return self.kernel_id

    def _message(self, msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
        return {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "username": "berth-tests",
                "session": self.session,
                "msg_type": msg_type,
                "version": "5.3",
                "date": datetime.datetime.now(datetime.UTC).isoformat(),
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }

    def execute(
        self, code: str, timeout: float | None = None, late_stdout: str | None = None
    ) -> ExecutionResult:
        """Runs code like a notebook cell; returns once the kernel is idle and has replied.

        ``late_stdout``: also wait (within the timeout) until stdout holds this text. Some
        kernels (Deno's) forward their stdout through a channel of their own and can send it
        after the reply and the idle status; a notebook shows such output in the cell all the
        same, since it carries the cell's request as its parent."""
        if self.ws is None:
            raise RuntimeError("kernel not started")
        request = self._message(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        msg_id = request["header"]["msg_id"]
        self.ws.send(json.dumps(request))
        result = ExecutionResult()
        replied = idle = False
        deadline = time.monotonic() + (timeout or self.timeout)
        while not (replied and idle) or (
            late_stdout is not None and late_stdout not in result.stdout
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete reply within the timeout:\n{result.describe()}")
            self.ws.settimeout(remaining)
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException as exc:  # not a TimeoutError subclass
                raise TimeoutError(
                    f"no complete reply within the timeout:\n{result.describe()}"
                ) from exc
            if not isinstance(frame, str):
                continue  # binary frames carry buffers: not used by these tests
            msg = json.loads(frame)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            msg_type, content = msg["header"]["msg_type"], msg["content"]
            if msg_type == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif msg_type in ("execute_result", "display_data"):
                result.results.append(content.get("data", {}).get("text/plain", ""))
            elif msg_type == "error":
                result.error = content
            elif msg_type == "status" and content["execution_state"] == "idle":
                idle = True
            elif msg_type == "execute_reply":
                result.status = content["status"]
                replied = True
        return result

    def shutdown(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self.kernel_id is not None:
            self.api.request("DELETE", f"api/kernels/{self.kernel_id}")
            self.kernel_id = None
