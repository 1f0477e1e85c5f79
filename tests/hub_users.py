"""Users of a test deployment as people use it: accounts, browser-style logins, a hub watcher.

Shared by the fault tests (tests/integration/test_faults.py) and the load benchmark
(bench/load.py). Everything talks to the deployment's loopback URL only.

- `add_users` creates NativeAuthenticator accounts with `berth users add` (a few in parallel)
  and returns their one-time passwords;
- `BrowserUser` signs up or logs in through the forms (XSRF cookie and form field, as a
  browser does), starts its server through /hub/spawn and follows /user/<name>/lab until
  JupyterLab answers 200;
- `HubWatcher` asks the hub's REST API for its version every half second in a thread and
  records every answer that is not a 200 within a few seconds: "the hub answers throughout".
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from deployment import Deployment

XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')


def add_user(dep: Deployment, name: str) -> str:
    """A new local account; returns its one-time password."""
    result = dep.berth("users", "add", name, timeout=120)
    assert result.returncode == 0, result.stderr
    for line in result.stderr.splitlines():
        if "one-time password:" in line:
            return line.split("one-time password:", 1)[1].split()[0]
    raise AssertionError(f"no password for {name}: {result.stderr}")


def add_users(dep: Deployment, names: list[str], parallel: int = 4) -> dict[str, str]:
    with ThreadPoolExecutor(parallel) as pool:
        return dict(zip(names, pool.map(lambda name: add_user(dep, name), names), strict=True))


@dataclass
class BrowserUser:
    """One person with a browser's cookie jar (no JavaScript: the HTTP requests a browser makes)."""

    dep: Deployment
    name: str
    password: str
    session: requests.Session = field(init=False)

    def __post_init__(self) -> None:
        self.session = self.dep.session()

    def xsrf(self, page: str) -> str:
        """The XSRF token a browser would send: the form's hidden field, else the cookie."""
        field = XSRF_FIELD.search(page)
        return field.group(1) if field else self.session.cookies.get("_xsrf", "")

    def sign_up(self) -> None:
        """NativeAuthenticator's sign-up form (with `open_signup`, the account works at once)."""
        page = self.session.get(f"{self.dep.url}/hub/signup", timeout=60)
        page.raise_for_status()
        form = {
            "username": self.name,
            "signup_password": self.password,
            "signup_password_confirmation": self.password,
        }
        form["_xsrf"] = self.xsrf(page.text)
        answer = self.session.post(f"{self.dep.url}/hub/signup", data=form, timeout=120)
        if answer.status_code != 200:
            raise RuntimeError(f"sign-up of {self.name}: HTTP {answer.status_code}")

    def login(self) -> None:
        page = self.session.get(f"{self.dep.url}/hub/login", timeout=60)
        page.raise_for_status()
        form = {"username": self.name, "password": self.password}
        form["_xsrf"] = self.xsrf(page.text)
        answer = self.session.post(
            f"{self.dep.url}/hub/login", data=form, timeout=60, allow_redirects=False
        )
        if answer.status_code != 302:
            raise RuntimeError(f"login of {self.name}: HTTP {answer.status_code}")

    def spawn(self) -> None:
        """What the browser does after login when the user has no server: GET /hub/spawn."""
        answer = self.session.get(
            f"{self.dep.url}/hub/spawn/{self.name}", timeout=120, allow_redirects=False
        )
        if answer.status_code not in (200, 302, 303):
            raise RuntimeError(f"spawn of {self.name}: HTTP {answer.status_code}")

    def lab_answers(self) -> bool:
        """Whether GET /user/<name>/lab ends, after the OAuth redirects, in JupyterLab's page."""
        answer = self.session.get(f"{self.dep.url}/user/{self.name}/lab", timeout=60)
        return answer.status_code == 200 and f"/user/{self.name}/lab" in answer.url

    def wait_for_lab(self, timeout: float = 300, every: float = 1.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.lab_answers():
                return
            time.sleep(every)
        raise TimeoutError(f"JupyterLab of {self.name} did not answer within {timeout:.0f} s")


class HubWatcher:
    """Pings the hub's REST API in a thread; `failures` lists what went wrong, and when."""

    def __init__(self, dep: Deployment, every: float = 0.5, timeout: float = 10) -> None:
        self.url = f"{dep.url}/hub/api/"
        self.session = dep.session()
        self.every = every
        self.timeout = timeout
        self.failures: list[str] = []
        self.answers = 0
        self.slowest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-watcher", daemon=True)

    def __enter__(self) -> HubWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)
        self.session.close()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                status = self.session.get(self.url, timeout=self.timeout).status_code
                if status != 200:
                    self.failures.append(f"{sent - started:.1f} s: HTTP {status}")
                else:
                    self.answers += 1
            except requests.RequestException as error:
                self.failures.append(f"{sent - started:.1f} s: {type(error).__name__}")
            self.slowest = max(self.slowest, time.monotonic() - sent)
            self._stop.wait(self.every)

    def assert_answered_throughout(self) -> None:
        assert self.answers > 0, "the watcher never got an answer"
        assert not self.failures, f"the hub did not answer: {self.failures[:10]}"
