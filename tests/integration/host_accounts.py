"""Host accounts made with useradd for the system-users tests, and their removal.

These tests run as root on a shared host, so every account, home and group they make must go
again, and the removal checks that it went. A second name for uid 0 is removed with --force and
never --remove: uid 0 runs the host's processes, and the home userdel would find is root's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NEEDS_USERADD = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("useradd"), reason="needs root and useradd"
)


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


class HostAccounts:
    """The accounts and groups made so far, every name starting with `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.users: list[str] = []
        self.root_aliases: list[str] = []
        self.groups: list[str] = []

    def add_group(self, name: str) -> None:
        run("groupadd", name)
        self.groups.append(name)

    def add_user(self, name: str, home: bool = True) -> None:
        """A user with a group of its own; with `home`, a private /home/NAME and a bash login."""
        if home:
            run("useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name)
        else:
            run("useradd", "--no-create-home", "--user-group", name)
        self.users.append(name)
        if home:
            Path(f"/home/{name}").chmod(0o700)

    def add_root_alias(self, name: str) -> None:
        """A second name for uid 0, as a misconfigured directory might have (no password:
        locked)."""
        run("useradd", "--non-unique", "--uid", "0", "--gid", "0", "--no-create-home", name)
        self.root_aliases.append(name)

    def remove(self) -> None:
        for name in self.root_aliases:
            subprocess.run(["userdel", "--force", name], capture_output=True, timeout=60)
        for name in self.users:
            userdel = ["userdel", "--force", "--remove", name]
            subprocess.run(userdel, capture_output=True, timeout=60)
            shutil.rmtree(f"/home/{name}", ignore_errors=True)  # files the tests put there
        for name in self.groups:
            subprocess.run(["groupdel", name], capture_output=True, timeout=60)
        left = subprocess.run(["getent", "passwd"], capture_output=True, text=True).stdout
        assert self.prefix not in left, "a test account was not removed"
        assert not [p for p in os.listdir("/home") if p.startswith(self.prefix)]


@contextmanager
def host_accounts(prefix: str) -> Iterator[HostAccounts]:
    """Accounts to make with the HostAccounts yielded; all removed on the way out."""
    accounts = HostAccounts(prefix)
    try:
        yield accounts
    finally:
        accounts.remove()
