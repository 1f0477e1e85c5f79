"""`berth up`'s accounts step when nothing is to be done: every account berth.yaml lists is in the
hub already, made by the operator's tools, with the admin flag it should have. Read from the
hub's REST API and two plain SQL reads, so the common case never imports JupyterHub's ORM or
NativeAuthenticator (berth.deploy.accounts runs the full path otherwise)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from berth.deploy import layout

JsonObject = dict[str, Any]


def settled(
    wanted: list[tuple[str, bool]],
    hub_users: dict[str, JsonObject | None],
    local_names: set[str],
    operator_names: set[str],
) -> JsonObject | None:
    """What :func:`berth.deploy.accounts.ensure_listed` answers when every listed account is
    there already, made by the operator's tools, with the admin flag it should have; None
    when anything is to be made, changed, refused or noted (the full path decides then)."""
    accounts: list[JsonObject] = []
    for name, admin in wanted:
        user = hub_users.get(name)
        if user is None or name not in local_names or name not in operator_names:
            return None
        if admin and not user.get("admin"):
            return None
        accounts.append({"name": name, "admin": admin})
    return {"accounts": accounts}


def listed_already(
    wanted: list[tuple[str, bool]], hub_user: Callable[[str], JsonObject | None]
) -> JsonObject | None:
    """:func:`settled` from the REST API (`hub_user`) and two plain SQL reads, without
    importing JupyterHub or NativeAuthenticator (1.5 s in the hub container, on every `berth
    up` although the accounts are nearly always there already). Any doubt, or any failure, is
    None."""
    from traitlets.config.loader import PyFileConfigLoader

    names = [name for name, _ in wanted]
    try:
        config = PyFileConfigLoader(layout.CONFIG_FILE).load_config()
        if "native" not in str(config.JupyterHub.get("authenticator_class", "")):
            return None
        local, operator = (
            usernames(str(config.JupyterHub.db_url), table, names)
            for table in ("users_info", "berth_accounts")
        )
        hub_users = {name: hub_user(name) for name in names}
    except Exception:  # a missing table, a hub or database still starting: the full path decides
        return None
    return settled(wanted, hub_users, local, operator)


def usernames(db_url: str, table: str, names: list[str]) -> set[str]:
    """Which of `names` have a row in `table` (one of two names above, never input): SQLite
    (the default) through the standard library, any other database through SQLAlchemy (still
    lighter than JupyterHub's ORM)."""
    if db_url.startswith("sqlite:///"):
        import sqlite3

        path = db_url.removeprefix("sqlite:///")
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        marks = ",".join("?" * len(names))
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as connection:
            query = f"SELECT username FROM {table} WHERE username IN ({marks})"
            return {str(row[0]) for row in connection.execute(query, names)}
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            select = text(f"SELECT username FROM {table} WHERE username IN :names")
            rows = connection.execute(
                select.bindparams(bindparam("names", expanding=True)), {"names": names}
            )
            return {str(row[0]) for row in rows}
    finally:
        engine.dispose()
