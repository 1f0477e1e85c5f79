"""The check of ``storage.volume_name_template``: a template that renders a valid, distinct
Docker volume name for every user and server."""

from __future__ import annotations

import string

from berth.config.fields import check_docker_name
from berth.names import template_namespace

# The fields the spawner fills in name templates, from the spawner's own namespace.
TEMPLATE_FIELDS = frozenset(template_namespace("berth", "user", "server"))
# Name fields whose value depends on the user; {prefix} is one constant for a deployment.
_PER_USER_FIELDS = frozenset({"username", "servername", "server_suffix"})
# escape() never writes these, so they can separate escaped names (see berth/names.py).
_SEPARATORS = frozenset("_.")
# (user, server) pairs a template must render validly for: escapes that start with "-"
# (any name not starting with a-z/0-9) and the default server (empty server name).
_SAMPLE_NAMES = (("user", "server"), ("-", "-"), ("-", ""))


def check_volume_template(value: str) -> None:
    """Refuse a volume name template that fails for some users or lets two users share.

    A volume that exists is mounted as it is found, so two users whose names render to one
    volume name would share their files: fields cannot be formatted (``{username:.3}``
    truncates), and two per-user fields need a ``_`` or ``.`` between them (``-`` is part of
    escaped names: ``{username}-{servername}`` renders user ``a`` with server ``2eb.`` and
    user ``a.b`` with server ``2e`` alike), except before ``{server_suffix}``, which brings
    its own ``_``.
    """
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid template: {exc}") from None
    fields = {field for _, field, _, _ in parts if field is not None}
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        known = ", ".join(sorted("{" + f + "}" for f in TEMPLATE_FIELDS))
        raise ValueError(f"unknown field(s) {sorted(unknown)} (known: {known})")
    if "username" not in fields:
        raise ValueError("must contain {username}, or every user would share one volume")
    after_field = False
    for literal, field, spec, conversion in parts:
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(
                f"{{{field}}} cannot be formatted or converted (no ':' or '!' inside the "
                "braces): it could make two users' volume names equal"
            )
        per_user = field in _PER_USER_FIELDS
        if per_user and after_field and field != "server_suffix" and not set(literal) & _SEPARATORS:
            raise ValueError(
                f"put '_' or '.' before {{{field}}}: without one, two different users can "
                "get the same volume name"
            )
        after_field = per_user or (after_field and not set(literal) & _SEPARATORS)
    for user, server in _SAMPLE_NAMES:
        rendered = value.format_map(template_namespace("berth", user, server))
        try:
            check_docker_name(rendered)
        except ValueError:
            raise ValueError(
                f"gives the volume name {rendered!r} for the user {user!r}, which is not a "
                "valid Docker name: start with fixed text (e.g. 'berth-user-{username}') and "
                "use only a-z A-Z 0-9 _ . - outside the fields"
            ) from None
