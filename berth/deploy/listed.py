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
from berth.deploy import accounts


@dataclass
class ListedAccounts:
    made: list[tuple[str, str, bool]] = field(default_factory=list)  # name, password, admin
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # admin rights Berth would not give


def ensure_request(users: UsersConfig) -> dict[str, Any]:
    """The accounts tool's ``ensure-listed`` request for berth.yaml's names, admins once."""
    admins = list(users.admins)
    others = [name for name in users.allowed if name not in users.admins]
    return accounts.request("ensure-listed", admins=admins, users=others)


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


def ensure_listed(
    run_accounts: Callable[[dict[str, Any]], Any], users: UsersConfig
) -> ListedAccounts:
    """`run_accounts(request)` runs berth.deploy.accounts in the hub and returns its answer."""
    if not users.admins and not users.allowed:
        return ListedAccounts()
    return read_answer(run_accounts(ensure_request(users)))
