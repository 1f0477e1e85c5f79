"""``SystemUserSpawner``: each server runs as the host account of the user's name.

Registered as the ``berth-system-users`` entry point of ``jupyterhub.spawners``. Meant for a
JupyterHub installed on the host (PAM logins: the accounts that log in are the accounts that
run), see :mod:`.system_users` for what is looked up and refused.
"""

from __future__ import annotations

from typing import Any

import docker.errors
from jupyterhub.auth import LocalAuthenticator
from traitlets import Bool, Integer, Unicode

from berth import names

from . import account_files, errors, specs, system_users
from .build import container_spec
from .container import ContainerSpawner


class SystemUserSpawner(ContainerSpawner):
    """A container per server, run as the host account named like the user (docs/spawner.md)."""

    _account_name: str = ""  # the account of the spawn in progress, for error messages

    host_homedir_format_string = Unicode(
        "/home/{username}",
        help="""The user's home on the host, mounted read-write at
        ``image_homedir_format_string``. Fields: ``{username}`` (the account name, not escaped),
        ``{home}`` (the home directory in the host's user database) and ``{prefix}``. It must
        exist, be a directory and belong to the account, or the spawn fails with a clear
        message (Docker would create a missing one owned by root).""",
    ).tag(config=True)

    image_homedir_format_string = Unicode(
        "/home/{username}",
        help="""Where the host home is mounted in the container; also HOME and the working
        directory of the server. Same fields as ``host_homedir_format_string``.""",
    ).tag(config=True)

    min_uid = Integer(
        1000,
        min=1,
        help="""Accounts with a lower uid are system accounts (daemon, www-data, …) and are
        refused, as uid 0 always is. Debian's first uid for people is 1000 (UID_MIN).""",
    ).tag(config=True)

    trust_authenticator_names = Bool(
        False,
        help="""Run servers as the host account named like the JupyterHub user even when the
        authenticator is not a local one (PAM or another ``LocalAuthenticator``). Off: with
        sign-up or OAuth logins a stranger could register ``ubuntu`` (or any host account's
        name) and get that account's files and groups. Turn on only when the authenticator's
        names are host accounts' by construction.""",
    ).tag(config=True)

    passwd_file = Unicode(
        "",
        help="""Read accounts from this passwd(5) file instead of the host's user database
        (NSS), with ``group_file``. For a hub that sees the host's accounts only as a copy:
        `berth up` points both at the one the engine guard keeps. Empty: NSS.""",
    ).tag(config=True)

    group_file = Unicode(
        "",
        help="""The group(5) file that goes with ``passwd_file`` (supplementary groups).""",
    ).tag(config=True)

    check_host_home = Bool(
        True,
        help="""Check that the host home exists, is a directory (not a link) and belongs to the
        account before the container is created. Off only where the hub cannot see the host's
        homes and something else checks them: under `berth up` the engine guard does, and
        refuses the container otherwise.""",
    ).tag(config=True)

    def authenticator_problem(self) -> str | None:
        """Why this hub's logins do not prove that a user owns the host account of that name."""
        if self.trust_authenticator_names or isinstance(self.authenticator, LocalAuthenticator):
            return None
        kind = type(self.authenticator).__name__ if self.authenticator else "none"
        return (
            f"the authenticator ({kind}) does not log people in as host accounts; use PAM (or "
            "another LocalAuthenticator), or set SystemUserSpawner.trust_authenticator_names"
        )

    def host_account(self) -> system_users.HostAccount:
        """The account that runs this user's server (a blocking look-up; it is local)."""
        if not self.passwd_file:
            return system_users.lookup(self.user.name, self.min_uid)
        if not self.group_file:
            raise errors.bad_config("SystemUserSpawner.passwd_file needs group_file too")
        try:
            return system_users.lookup(
                self.user.name,
                self.min_uid,
                account_files.passwd_lookup(self.passwd_file),
                account_files.grouplist_lookup(self.group_file),
            )
        except OSError as exc:
            raise errors.bad_config(f"the user database cannot be read ({exc})") from exc

    def home_problem(self, path: str, uid: int) -> str | None:
        """Why ``path`` is not ``uid``'s home. A hub that sees the host's homes under another
        path (in a container) overrides this."""
        return system_users.home_problem(path, uid)

    async def _build_spec(self, image: str) -> specs.ContainerSpec:
        if problem := self.authenticator_problem():
            raise errors.bad_config(problem)
        account = self.host_account()
        try:
            host_home, image_home = system_users.home_paths(
                account,
                self.prefix,
                self.host_homedir_format_string,
                self.image_homedir_format_string,
            )
        except names.InvalidNameError as exc:
            raise errors.bad_config(str(exc)) from exc
        problem = self.home_problem(host_home, account.uid) if self.check_host_home else None
        if problem is not None:
            raise system_users.bad_home(account.name, problem)
        self._account_name = account.name
        spec = container_spec(await self.spec_inputs(image))
        return system_users.system_user_spec(spec, account, host_home, image_home)

    async def _start(self) -> Any:
        """The container spawner's start; a home the engine guard refuses (missing, a link,
        someone else's) is told to the user as such, not as an engine error."""
        self._account_name = ""
        try:
            return await super()._start()
        except docker.errors.APIError as exc:
            problem = system_users.guard_home_refusal(exc)
            if problem is None or not self._account_name:
                raise
            raise system_users.bad_home(self._account_name, problem) from exc
