"""Whose is an existing volume? The check made before mounting one (pure: labels in, verdict out).

Volumes are found by name, and a name comes from a template filled with the user's name. So a
template such as ``berth-{username}-data`` and a user called ``hub`` would name the hub's own
data volume (its database, cookie secret, tokens and TLS key, all owned by uid 1000 -- the
notebook user), and a user deleted and created again would silently get the old account's files.

So every volume Berth creates carries labels naming its owner (:func:`~.specs.labels`: user,
server, deployment prefix, JupyterHub's user id and the account's creation time), and an
existing volume is mounted only when its labels say it is this user's, in this deployment:

* the hub's data volume (``berth.role=hub-data``): never;
* a volume without Berth's labels: only with ``adopt_unlabelled_volumes`` (migrations from
  DockerSpawner, volumes made by hand);
* another deployment's (``berth.prefix``), another user's (``berth.user``), or an earlier
  account's of the same name (``berth.user-id`` or ``berth.user-created`` differ): never -- an
  administrator decides. (A database may give a new account the id of a deleted one; the
  creation time tells them apart. It is compared to within a few seconds, because some
  databases round the stored time.)

Volumes whose template does not name the user (shared ones, e.g. course material) are the
operator's explicit choice of name, which no user can steer: only the hub's data volume is
refused there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .specs import (
    LABEL_MANAGED,
    LABEL_PREFIX,
    LABEL_ROLE,
    LABEL_USER,
    LABEL_USER_CREATED,
    LABEL_USER_ID,
    ROLE_HUB_DATA,
    ROLE_SHARED_VOLUME,
    ROLE_VOLUME,
    Identity,
    Mount,
)


def creation_role(mount: Mount) -> str:
    """The ``berth.role`` of a volume Berth creates for ``mount``."""
    return ROLE_VOLUME if mount.per_user else ROLE_SHARED_VOLUME


def refusal(
    mount: Mount,
    found_labels: Mapping[str, str] | None,
    identity: Identity,
    adopt_unlabelled: bool = False,
) -> str | None:
    """Why the existing volume ``mount.source`` must not be mounted for ``identity``, or None."""
    name = mount.source
    labels = found_labels or {}
    if labels.get(LABEL_ROLE) == ROLE_HUB_DATA:
        return (
            f"The volume {name} is the hub's own data volume and is never mounted into a user's "
            "server. An administrator has to change the volume name template."
        )
    if not mount.per_user:
        return None
    if labels.get(LABEL_MANAGED) != "true":
        if adopt_unlabelled:
            return None
        return (
            f"The volume {name} already exists but was not created by Berth for you (it has no "
            "owner labels). An administrator can check whose files it holds and, if they are "
            "yours (e.g. from DockerSpawner), set ContainerSpawner.adopt_unlabelled_volumes = "
            "True; otherwise remove or rename it."
        )
    if labels.get(LABEL_ROLE) != ROLE_VOLUME:
        return (
            f"The volume {name} is not a user's volume (role {labels.get(LABEL_ROLE)!r}). An "
            "administrator has to change the volume name template."
        )
    if labels.get(LABEL_PREFIX, "") != identity.prefix:
        return (
            f"The volume {name} belongs to another Berth deployment on this engine (prefix "
            f"{labels.get(LABEL_PREFIX, '')!r}). An administrator has to change the prefix or "
            "the volume name template."
        )
    if labels.get(LABEL_USER) != identity.username:
        return (
            f"The volume {name} belongs to another user ({labels.get(LABEL_USER)!r}). An "
            "administrator has to change the volume name template so that names cannot collide."
        )
    if not same_account(labels, identity):
        return (
            f"The volume {name} holds the files of an earlier account named "
            f"{identity.username!r} that was deleted; Berth does not hand them to a new account "
            f"on its own. An administrator decides: remove it (docker volume rm {name}) to start "
            "fresh, or copy the files the new account may have into a new volume first."
        )
    return None


CREATED_TOLERANCE = 2.0  # seconds: databases that store whole seconds may round


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def same_account(labels: Mapping[str, str], identity: Identity) -> bool:
    """False when the labels name another account than ``identity``'s (by id or creation
    time); True when they match or say nothing (volumes from before Berth recorded owners)."""
    owner_id = labels.get(LABEL_USER_ID, "")
    if owner_id and identity.user_id and owner_id != identity.user_id:
        return False
    owner_created = _parse(labels.get(LABEL_USER_CREATED, ""))
    created = _parse(identity.user_created)
    if owner_created is not None and created is not None:
        return abs((owner_created - created).total_seconds()) <= CREATED_TOLERANCE
    return True
