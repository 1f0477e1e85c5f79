"""The plain-HTTP port: answers HTTP-01 challenges, redirects everything else to HTTPS.

Nothing else is served on it: no page, no header from the hub. Only tokens the running order
put here answer; an unknown token is a 404.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # base64url, as RFC 8555 makes tokens


class Tokens:
    """Token -> key authorization, shared by the issuing thread and the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, str] = {}

    def put(self, token: str, answer: str) -> None:
        with self._lock:
            self._answers[token] = answer

    def get(self, token: str) -> str | None:
        with self._lock:
            return self._answers.get(token)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


def redirect_target(host_header: str | None, path: str, names: list[str], https_port: int) -> str:
    """Where a plain-HTTP request goes: the same path on HTTPS, on one of the certificate's
    names (the Host header only when it is one of them, so this is no open redirect)."""
    host = (host_header or "").rsplit(":", 1)[0].strip().lower().rstrip(".")
    if host not in names:
        host = names[0]
    port = "" if https_port == 443 else f":{https_port}"
    if not path.startswith("/") or path.startswith("//"):
        path = "/"
    return f"https://{host}{port}{path}"


def make_server(
    port: int, tokens: Tokens, names: list[str], https_port: int
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "berth-acme"
        sys_version = ""

        def do_GET(self) -> None:
            if self.path.startswith(CHALLENGE_PREFIX):
                token = self.path[len(CHALLENGE_PREFIX) :]
                answer = tokens.get(token) if _TOKEN_RE.match(token) else None
                body = (answer or "not found").encode()
                self.send_response(200 if answer else 404)
                self.send_header("Content-Type", "text/plain")
            else:
                body = b""
                self.send_response(301)
                self.send_header(
                    "Location",
                    redirect_target(self.headers.get("Host"), self.path, names, https_port),
                )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            if self.path.startswith(CHALLENGE_PREFIX):  # the authority's visits, not every redirect
                super().log_message(format, *args)

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    return server
