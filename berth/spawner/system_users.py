"""System users: the host account with the user's name runs the server (pure parts).

The container runs as that account's uid and gid, with its supplementary groups from the host's
user database, and its home directory from the host mounted at the image's home, so that files
created in a notebook belong to that account on the host. What is looked up and decided here:

* :func:`lookup` -- the account (``pwd``/``os.getgrouplist``, i.e. NSS: ``/etc/passwd``, LDAP,
  …), refused with a clear spawn error when there is none, or when it is root (uid 0, gid 0,
  or member of group 0), or a system account (uid below ``min_uid``): a server never runs as
  root nor as someone else;
* :func:`home_problem` -- the host home must exist, be a real directory (not a link) and belong to
  the account: Docker would otherwise create a missing one as root, or mount another's;
* :func:`system_user_spec` -- a container spec adjusted to run as the account (pure).
"""

from __future__ import annotations

import os
import posixpath
import pwd
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from berth import names

from . import errors, specs
from .errors import SpawnException

REASON_ACCOUNT = "account"


@dataclass(frozen=True)
class HostAccount:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups, without the primary one
    home: str  # as the user database says (the ``{home}`` template field)


def no_account(name: str) -> SpawnException:
    return SpawnException(
        f"There is no account named {name!r} on this host, and servers here run as the host "
        "account of the same name. Ask an administrator to create it.",
        reason=REASON_ACCOUNT,
        status_code=403,
    )


def root_account(name: str, what: str) -> SpawnException:
    return SpawnException(
        f"The host account {name!r} has {what}; servers are never run with root's identity. "
        "Ask an administrator to fix the account.",
        reason=REASON_ACCOUNT,
        status_code=403,
    )


def bad_home(name: str, problem: str) -> SpawnException:
    return SpawnException(
        f"Your home directory cannot be used: {problem}. Ask an administrator to create it, "
        f"owned by the account {name!r}.",
        reason=REASON_ACCOUNT,
        status_code=500,
    )


def lookup(
    name: str,
    min_uid: int = 0,
    getpwnam: Callable[[str], pwd.struct_passwd] = pwd.getpwnam,
    getgrouplist: Callable[[str, int], list[int]] = os.getgrouplist,
) -> HostAccount:
    """The host account named ``name``; a spawn error when there is none or it is root."""
    try:
        entry = getpwnam(name)
    except (KeyError, ValueError, UnicodeError):  # ValueError: a name with a NUL byte
        raise no_account(name) from None
    try:
        every_group = getgrouplist(entry.pw_name, entry.pw_gid)
    except OSError:
        every_group = [entry.pw_gid]
    groups = tuple(sorted({g for g in every_group if g != entry.pw_gid}))
    account = HostAccount(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)
    if account.uid == 0:
        raise root_account(name, "uid 0")
    if account.gid == 0:
        raise root_account(name, "primary group 0 (root)")
    if 0 in account.groups:
        raise root_account(name, "membership of group 0 (root)")
    if account.uid < min_uid:
        raise SpawnException(
            f"The host account {name!r} is a system account (uid {account.uid}, below "
            f"{min_uid}); servers run only as people's accounts. Ask an administrator.",
            reason=REASON_ACCOUNT,
            status_code=403,
        )
    return account


def home_paths(
    account: HostAccount, prefix: str, host_template: str, image_template: str
) -> tuple[str, str]:
    """(host home, home in the image) from the templates; both must be absolute, no '..'."""
    namespace = {"username": account.name, "home": account.home, "prefix": prefix}
    paths = []
    for template in (host_template, image_template):
        path = names.render(template, namespace)
        if not path.startswith("/") or ".." in path.split("/"):
            raise names.InvalidNameError(f"home directory {path!r} must be an absolute path")
        paths.append(posixpath.normpath(path))
    return paths[0], paths[1]


def home_problem(
    path: str, uid: int, lstat: Callable[[str], os.stat_result] = os.lstat
) -> str | None:
    """Why the host directory ``path`` is not ``uid``'s home to mount, or None."""
    try:
        found = lstat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path} cannot be checked ({exc.strerror})"
    if stat.S_ISLNK(found.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(found.st_mode):
        return f"{path} is not a directory"
    if found.st_uid != uid:
        return f"{path} belongs to uid {found.st_uid}, not to this account"
    return None


# How the engine guard (berth/guard/homes.py) begins its refusals of a home bind.
GUARD_HOME_REFUSAL = "berth engine guard: home "


def guard_home_refusal(exc: Exception) -> str | None:
    """The engine guard's reason for refusing a home (``home '/home/x' does not exist …``)
    from the engine error the hub got, or None for any other error."""
    explanation = getattr(exc, "explanation", None) or ""
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    if getattr(exc, "status_code", None) != 403 or GUARD_HOME_REFUSAL not in explanation:
        return None
    return explanation.split("berth engine guard: ", 1)[1].strip()


# Extra create/host-config keys that would change who the container runs as or what it may do;
# a migrated DockerSpawner config often sets `user: root`, which here would mean a root server.
IDENTITY_KEYS = frozenset({"user", "privileged", "cap_add", "group_add", "userns_mode"})


def identity_overrides(spec: specs.ContainerSpec) -> list[str]:
    """The extra settings of ``spec`` that :func:`system_user_spec` must not let through."""
    return sorted(
        {
            *IDENTITY_KEYS & set(spec.extra_create_kwargs),
            *IDENTITY_KEYS & set(spec.extra_host_config),
        }
    )


def system_user_spec(
    spec: specs.ContainerSpec, account: HostAccount, host_home: str, image_home: str
) -> specs.ContainerSpec:
    """``spec`` run as ``account``: its uid:gid and groups, no capabilities, no root start,
    the host home mounted read-write at ``image_home`` and used as HOME and working directory.
    Refuses extra settings that would run it as anyone else (:data:`IDENTITY_KEYS`)."""
    if overrides := identity_overrides(spec):
        raise errors.bad_config(
            f"extra_create_kwargs/extra_host_config set {', '.join(overrides)}: a system user's "
            "server runs as that account only"
        )
    environment: Mapping[str, str] = {
        **{k: v for k, v in spec.environment.items() if k not in specs.ROOT_START_SWITCHES},
        "HOME": image_home,
        "USER": account.name,
        "LOGNAME": account.name,
    }
    mounts: Sequence[specs.Mount] = [
        *(m for m in spec.mounts if m.target != image_home),
        specs.Mount(host_home, image_home, read_only=False, per_user=True),
    ]
    return replace(
        spec,
        environment=environment,
        mounts=mounts,
        privileges=specs.Privileges(user=f"{account.uid}:{account.gid}", group_add=account.groups),
        working_dir=image_home,
    )
