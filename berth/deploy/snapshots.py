"""`berth snapshot`: a user's running server committed into an image that user can start again.

An image is named ``berth-snapshot/<prefix>/u<escaped user>:<name>`` (``u`` because a
repository path component must start with a letter or digit, which an escaped name need not;
the escaping keeps users apart, see :mod:`berth.names`) and labelled with its owner and the
deployment's spawner prefix. The spawner offers a user exactly the snapshots whose labels name them
(``ContainerSpawner.snapshot_images``), so nobody starts another user's snapshot.

Sharing (`berth snapshot share`, an operator's command on the host): the image gets a label per
user it is shared with (:func:`berth.labels.snapshot_share_label`). An image's labels cannot be
changed in place, so the image is built again ``FROM`` itself with the new labels (the engine's
classic builder: no new layer, only a new config whose parent is the old image) and the tag
moves to it; a server running from the old image keeps running, and removing the snapshot
removes the old config with it. Unsharing sets the user's label to "" (a build can add labels,
not drop them), which no user's filter matches.

What is in one: the container's own file system -- packages installed with pip or apt, files
outside the mounted volume -- and not the volumes, which stay where they are. The image keeps the
configuration of the image the server was started from (command, user, environment, working
directory), not the container's: the container's environment holds the server's API token.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docker
from docker.errors import APIError, BuildError, ImageNotFound

from berth import names
from berth.engine_kind import image_names
from berth.errors import BerthError
from berth.labels import (
    LABEL_MANAGED,
    LABEL_PREFIX,
    LABEL_ROLE,
    LABEL_SERVER,
    LABEL_SNAPSHOT_NAME,
    LABEL_SNAPSHOT_OWNER,
    LABEL_SNAPSHOT_PREFIX,
    LABEL_SNAPSHOT_SERVER,
    LABEL_SNAPSHOT_SHARED,
    LABEL_SNAPSHOT_TAKEN,
    LABEL_USER,
    snapshot_share_label,
)
from berth.labels import ROLE_SINGLEUSER as SINGLEUSER

REPOSITORY = "berth-snapshot"
LABEL_OWNER = LABEL_SNAPSHOT_OWNER
LABEL_NAME = LABEL_SNAPSHOT_NAME
LABEL_SERVER_OF = LABEL_SNAPSHOT_SERVER
LABEL_TAKEN = LABEL_SNAPSHOT_TAKEN
LABEL_DEPLOYMENT = LABEL_SNAPSHOT_PREFIX
# Why `berth snapshot take` refuses the other back ends (docs/configuration.md, `snapshots`).
UNSUPPORTED_HINT = {
    "swarm": "a server's container runs on whichever node its task landed on, which a "
    "manager's API cannot commit; an image committed there would not reach the other nodes "
    "(nor pass the guard's image list)",
    "system-users": "the server's files are the user's home on the host, not the container: "
    "there is nothing in the container worth keeping",
}
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")
# What the new image keeps from the image the server was started from.
KEPT_CONFIG = ("Env", "Cmd", "Entrypoint", "User", "WorkingDir", "ExposedPorts", "Healthcheck")


@dataclass(frozen=True)
class Snapshot:
    image: str  # repository:tag
    owner: str
    name: str
    server: str
    taken: str
    size: int  # bytes
    shared: tuple[str, ...] = ()  # the users it is shared with, sorted


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise BerthError(
            f"invalid snapshot name {name!r}",
            hint="1 to 64 characters from a-z 0-9 _ . -, starting with a letter or digit",
        )
    return name


def image_ref(prefix: str, user: str, name: str) -> str:
    """``berth-snapshot/<deployment's spawner prefix>/u<escaped user>:<name>``: deployments on
    one engine keep theirs apart."""
    return f"{REPOSITORY}/{prefix.lower()}/u{names.escape(user)}:{check_name(name)}"


def commit_config(
    base: Mapping[str, Any], container_env: list[str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The config of the committed image: the base image's (see the module docstring) and the
    snapshot's labels over the base image's labels.

    The engine fills in what this config leaves out from the container's, variable by variable
    for the environment: so every variable the container has beyond the base image's (the
    server's API token among them) is given here, empty. The spawner sets them afresh."""
    config = {key: base[key] for key in KEPT_CONFIG if base.get(key) is not None}
    env = list(base.get("Env") or [])
    known = {item.split("=", 1)[0] for item in env}
    extra = {item.split("=", 1)[0] for item in container_env} - known
    config["Env"] = env + [f"{key}=" for key in sorted(extra)]
    config["Labels"] = {**(base.get("Labels") or {}), **labels}
    return config


# Characters the two engines read differently in a commit's Dockerfile instruction: Docker
# unescapes and substitutes inside double quotes and strips single quotes; Podman 4.3 strips
# the double quotes and keeps everything else as it is.
UNEVEN = frozenset("\"'$\\\n\r")


def _quoted(value: str) -> str | None:
    """``value`` in double quotes, which both engines read back as ``value``; None when it
    holds a character they read differently."""
    return None if UNEVEN & set(value) else f'"{value}"'


def commit_changes(config: Mapping[str, Any]) -> list[str]:
    """:func:`commit_config`'s environment, command, user, working directory and labels as the
    Dockerfile instructions of a commit's ``changes``, which Docker and Podman both apply.
    Podman 4.3's compatible commit ignores the config in the request's body (its image got the
    container's environment, the server's API token with it, and no snapshot labels), so these
    carry it there; Docker applies the body, then these. A value neither engine's parser would
    read back as it is stays out (Docker has it from the body; the emptied variables, the
    token among them, never do)."""
    changes = []
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        if (word := _quoted(value)) is not None:
            changes.append(f"ENV {key}={word}")
    for key, instruction in (("Entrypoint", "ENTRYPOINT"), ("Cmd", "CMD")):
        if config.get(key) is not None:
            changes.append(f"{instruction} {json.dumps(config[key])}")
    if config.get("User") is not None:
        changes.append(f"USER {config['User']}")
    if config.get("WorkingDir"):
        changes.append(f"WORKDIR {config['WorkingDir']}")
    for label, value in (config.get("Labels") or {}).items():
        if (word := _quoted(value)) is not None and _quoted(label) is not None:
            changes.append(f"LABEL {_quoted(label)}={word}")
    return changes


def _server_container(client: docker.DockerClient, prefix: str, user: str, server: str) -> Any:
    wanted = [f"{LABEL_MANAGED}=true", f"{LABEL_ROLE}={SINGLEUSER}", f"{LABEL_PREFIX}={prefix}"]
    for container in client.containers.list(filters={"label": wanted}):
        labels = container.labels
        if labels.get(LABEL_USER) == user and labels.get(LABEL_SERVER) == server:
            return container
    what = f"{user}'s server {server!r}" if server else f"{user}'s server"
    raise BerthError(f"{what} is not running", hint="start it, then take the snapshot")


def take(
    client: docker.DockerClient, prefix: str, user: str, server: str = "", name: str = ""
) -> Snapshot:
    """Commit the user's running server (pausing it for the moment of the commit)."""
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    name = check_name(name or now.strftime("%Y%m%d-%H%M%S"))
    ref = image_ref(prefix, user, name)
    try:
        client.images.get(ref)
        raise BerthError(f"{user} has a snapshot named {name!r} already", hint="choose another")
    except ImageNotFound:
        pass
    container = _server_container(client, prefix, user, server)
    base = client.images.get(container.attrs["Image"]).attrs.get("Config") or {}
    labels = {LABEL_OWNER: user, LABEL_NAME: name, LABEL_SERVER_OF: server,
              LABEL_TAKEN: now.isoformat(), LABEL_DEPLOYMENT: prefix}  # fmt: skip
    repository, tag = ref.rsplit(":", 1)
    container_env = container.attrs.get("Config", {}).get("Env") or []
    conf = commit_config(base, container_env, labels)
    container.commit(repository=repository, tag=tag, conf=conf, changes=commit_changes(conf))
    return _snapshot(client.images.get(ref))


def _snapshot(image: Any) -> Snapshot:
    labels = image.labels
    return Snapshot(
        image=image_ref(labels[LABEL_DEPLOYMENT], labels[LABEL_OWNER], labels[LABEL_NAME]),
        owner=labels[LABEL_OWNER],
        name=labels[LABEL_NAME],
        server=labels.get(LABEL_SERVER_OF, ""),
        taken=labels.get(LABEL_TAKEN, ""),
        size=int(image.attrs.get("Size") or 0),
        shared=shared_with(labels),
    )


def shared_with(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The users a snapshot's labels share it with: a label counts only when its key is the
    one its value (the user) gives, so a hand-made label names nobody else."""
    return tuple(
        sorted(
            value
            for key, value in labels.items()
            if key.startswith(LABEL_SNAPSHOT_SHARED) and value
            and key == snapshot_share_label(value)
        )
    )  # fmt: skip


def share_changes(
    snapshot: Snapshot, add: Iterable[str], drop: Iterable[str], known_users: Iterable[str]
) -> dict[str, str]:
    """The labels that share ``snapshot`` with the users in ``add`` and stop sharing it with
    those in ``drop``; refused for a user the hub does not know (``add``), the owner, or a user
    it is not shared with (``drop``). Empty when nothing changes."""
    known = set(known_users)
    changes: dict[str, str] = {}
    for user in add:
        if user == snapshot.owner:
            raise BerthError(f"{user} owns {snapshot.image}: there is nothing to share")
        if user not in known:
            raise BerthError(
                f"there is no user named {user!r} on the hub",
                hint="see `berth users list`; add the user first",
            )
        if user not in snapshot.shared:
            changes[snapshot_share_label(user)] = user
    for user in drop:
        if user not in snapshot.shared:
            raise BerthError(f"{snapshot.image} is not shared with {user!r}")
        changes[snapshot_share_label(user)] = ""
    return changes


def _find(client: docker.DockerClient, prefix: str, owner: str, name: str) -> Snapshot:
    for snapshot in snapshots(client, prefix, owner):
        if snapshot.name == name:
            return snapshot
    raise BerthError(f"{owner} has no snapshot named {name!r}", hint="see `berth snapshot list`")


def _relabel(client: docker.DockerClient, snapshot: Snapshot, changes: Mapping[str, str]) -> None:
    """Build the snapshot again FROM its own image ID (so no registry is asked and no other
    image of that name is taken) with ``changes`` over its labels, and move its tag there."""
    image_id = client.images.get(snapshot.image).id
    dockerfile = io.BytesIO(f"FROM {image_id}\n".encode())
    try:
        client.images.build(
            fileobj=dockerfile, tag=snapshot.image, labels=dict(changes), pull=False, rm=True
        )
    except (APIError, BuildError) as exc:
        raise BerthError(f"could not relabel {snapshot.image}: {exc}") from exc


def share(
    client: docker.DockerClient,
    prefix: str,
    owner: str,
    name: str,
    users: Iterable[str],
    known_users: Iterable[str],
) -> Snapshot:
    """Share ``owner``'s snapshot ``name`` with ``users`` (each must be one of ``known_users``,
    the hub's): their options forms offer it, and their spawners accept it."""
    snapshot = _find(client, prefix, owner, name)
    changes = share_changes(snapshot, users, (), known_users)
    if changes:
        _relabel(client, snapshot, changes)
    return _find(client, prefix, owner, name)


def unshare(
    client: docker.DockerClient, prefix: str, owner: str, name: str, users: Iterable[str]
) -> Snapshot:
    """Stop sharing the snapshot with ``users``: their next start may not pick it (a server
    already running from it keeps running)."""
    snapshot = _find(client, prefix, owner, name)
    changes = share_changes(snapshot, (), users, ())
    if changes:
        _relabel(client, snapshot, changes)
    return _find(client, prefix, owner, name)


def snapshots(client: docker.DockerClient, prefix: str, user: str | None = None) -> list[Snapshot]:
    """This deployment's snapshots (of one user), oldest first."""
    found = []
    for image in client.images.list(filters={"label": [f"{LABEL_DEPLOYMENT}={prefix}"]}):
        labels = image.labels
        if LABEL_OWNER in labels and LABEL_NAME in labels and user in (None, labels[LABEL_OWNER]):
            try:
                snapshot = _snapshot(image)
            except BerthError:
                continue  # a hand-made label that is no snapshot name
            # Only the image that holds the snapshot's tag: an untagged one with the same labels
            # (a snapshot removed while a container still used it, the config a share replaced)
            # is not that snapshot.
            if snapshot.image in image_names(image.tags):
                found.append(snapshot)
    return sorted(found, key=lambda s: (s.taken, s.image))


def _remove_image(client: docker.DockerClient, snapshot: Snapshot) -> None:
    try:
        client.images.remove(snapshot.image, noprune=False)
    except APIError as exc:
        if exc.status_code != 409:
            raise
        raise BerthError(
            f"{snapshot.image} is in use by a container (a server started from it)",
            hint="stop that server, then remove the snapshot",
        ) from None


def remove(client: docker.DockerClient, prefix: str, user: str, name: str) -> Snapshot:
    snapshot = _find(client, prefix, user, name)
    _remove_image(client, snapshot)
    return snapshot


def prune(client: docker.DockerClient, prefix: str, user: str, keep: int) -> list[Snapshot]:
    """Remove the user's oldest snapshots beyond the newest ``keep`` (0: keep all); one that a
    running server uses stays until the next prune."""
    if keep <= 0:
        return []
    removed = []
    for snapshot in snapshots(client, prefix, user)[:-keep]:
        try:
            _remove_image(client, snapshot)
        except BerthError:
            continue
        removed.append(snapshot)
    return removed
