"""`berth up`'s accounts for the names in berth.yaml (local accounts only).

One exec of berth.deploy.accounts in the hub (``ensure-listed``) makes every missing account
and reports, per name, a one-time password, a note, or a refusal. The hub itself refuses
sign-ups of these names (berth/auth/native.py), so the seconds between the hub answering and
this step are harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from berth.config.users import UsersConfig


@dataclass
class ListedAccounts:
    made: list[tuple[str, str, bool]] = field(default_factory=list)  # name, password, admin
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # admin rights Berth would not give


def ensure_args(users: UsersConfig) -> list[str]:
    # `--admin=NAME`, one word: a name starting with "-" (JupyterHub allows it) stays a value.
    args = ["ensure-listed"]
    args += [f"--admin={name}" for name in users.admins]
    args += [f"--user={name}" for name in users.allowed if name not in users.admins]
    return args


def read_answer(answer: dict[str, Any]) -> ListedAccounts:
    out = ListedAccounts()
    for entry in answer.get("accounts", []):
        if "password" in entry:
            out.made.append((entry["name"], entry["password"], bool(entry.get("admin"))))
        if "note" in entry:
            out.notes.append(entry["note"])
        if "refused" in entry:
            out.refused.append(entry["refused"])
    return out


def ensure_listed(run_accounts: Callable[[list[str]], Any], users: UsersConfig) -> ListedAccounts:
    """`run_accounts(args)` runs berth.deploy.accounts in the hub and returns its answer."""
    if not users.admins and not users.allowed:
        return ListedAccounts()
    return read_answer(run_accounts(ensure_args(users)))
