"""The labels Berth puts on what it creates on the engine, and their values.

Selection goes by these labels, never by names (names are the operator's to choose): the
spawners mark users' containers and volumes, `berth up` its service's containers, volumes and
network, and ``berth down``, ``status``, ``backup`` and the engine guard find them so. A ground
floor module: the guard imports it without loading the spawner (and JupyterHub with it).
"""

from __future__ import annotations

from berth.names import escape  # a ground floor module too: it imports nothing of Berth's

LABEL_MANAGED = "berth.managed"  # "true" on everything Berth creates
LABEL_ROLE = "berth.role"  # what the object is for: one of the ROLE_* values below
LABEL_USER = "berth.user"
LABEL_SERVER = "berth.server"
LABEL_SPAWNER = "berth.spawner"
LABEL_PREFIX = "berth.prefix"  # the spawner's prefix: tells deployments on one engine apart
# JupyterHub's user id and the account's creation time: tell a re-created user (same name, the
# id possibly reused by the database) from the deleted one.
LABEL_USER_ID = "berth.user-id"
LABEL_USER_CREATED = "berth.user-created"

# Values of LABEL_ROLE.
ROLE_SINGLEUSER = "single-user"
ROLE_VOLUME_INIT = "volume-init"
ROLE_VOLUME = "volume"  # a user's own volume (its template names the user)
ROLE_SHARED_VOLUME = "shared-volume"  # a volume whose template names no user
ROLE_HUB_DATA = "hub-data"  # the hub's database and secrets (berth up creates it)
ROLE_PROXY_DATA = "proxy-data"  # the proxy's token and certificate (berth up)
ROLE_ENGINE_SOCKET = "engine-socket"  # the guard's socket, shared with the hub (berth up)
ROLE_ACME_DATA = "acme-data"  # berth-acme's account key and state (berth up, tls.acme)
ROLE_BACKUPS = "backups"  # the volume berth-backup writes scheduled backups to (backup.enabled)
ROLE_NETWORK = "network"  # the Berth network (berth up)
ROLE_FIREWALL = "firewall"  # the firewall container (berth up)

# Images `berth snapshot` commits from a user's server: whose (the JupyterHub user name, raw),
# the snapshot's name, the server it was taken from, when (UTC) and in which deployment (the
# spawner prefix). The spawner offers a user only the snapshots whose owner label names them.
LABEL_SNAPSHOT_OWNER = "berth.snapshot.owner"
LABEL_SNAPSHOT_NAME = "berth.snapshot.name"
LABEL_SNAPSHOT_SERVER = "berth.snapshot.server"
LABEL_SNAPSHOT_TAKEN = "berth.snapshot.taken"
LABEL_SNAPSHOT_PREFIX = "berth.snapshot.prefix"
# A snapshot an admin shared (`berth snapshot share`): one label per user it is shared with,
# ``berth.snapshot.shared.<escaped user>`` = the raw user name (empty once unshared: an image's
# labels can be added to, never taken away), so the engine's label filter finds a user's.
LABEL_SNAPSHOT_SHARED = "berth.snapshot.shared."


def snapshot_share_label(user: str) -> str:
    """The label that shares a snapshot with ``user`` (see :data:`LABEL_SNAPSHOT_SHARED`)."""
    return LABEL_SNAPSHOT_SHARED + escape(user)


# `berth up`'s service containers: which one (guard, hub, proxy or firewall), and a
# fingerprint of everything it is made from.
LABEL_DEPLOY_ROLE = "berth.deploy.role"
LABEL_FINGERPRINT = "berth.deploy.fingerprint"
LABEL_STACK = "berth.deploy.stack"  # on every Swarm object `berth up` makes: down removes them

# `berth run`'s notebook containers, and the host directory each one mounts.
LABEL_RUN = "berth.run"
LABEL_RUN_MOUNT = "berth.run.mount"


def managed(role: str) -> dict[str, str]:
    """The labels of an object of ``role`` that Berth made."""
    return {LABEL_MANAGED: "true", LABEL_ROLE: role}
