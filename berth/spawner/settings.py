"""The configurable settings of :class:`~berth.spawner.ContainerSpawner` (all ``config=True``).

Kept apart from the lifecycle code so each module has one job. ``ContainerSettings`` is a
``LoggingConfigurable`` mixin; config sections ``c.ContainerSpawner.*`` apply to it.
"""

from __future__ import annotations

import os
from typing import Any

from jupyterhub.traitlets import ByteSpecification
from traitlets import (
    Bool,
    Callable,
    CaselessStrEnum,
    Dict,
    Float,
    Integer,
    List,
    TraitType,
    Unicode,
    Union,
    default,
)
from traitlets.config import LoggingConfigurable

from . import limits


def or_callable(*values: TraitType[Any, Any], default: Any, help: str) -> Union:
    """A setting given as a value of one of ``values``, or as a callable taking the spawner and
    returning one (may be async; evaluated at each start, see ``base.resolve``)."""
    return Union([*values, Callable()], default_value=default, help=help).tag(config=True)


class ContainerSettings(LoggingConfigurable):
    docker_url = Unicode(
        "",
        help="""Docker Engine API address, e.g. ``unix:///var/run/docker.sock``.

        Empty: read ``DOCKER_HOST`` / ``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH`` like the docker
        CLI does, defaulting to the local socket.""",
    ).tag(config=True)

    engine_threads = Integer(
        32,
        min=2,
        help="""Worker threads (and HTTP connections) shared by all spawners for engine calls.

        Each in-flight engine call (an image pull holds one for its whole duration) uses one;
        size it above the number of spawns you expect at once.""",
    ).tag(config=True)

    engine_timeout = Float(
        120.0, help="Timeout in seconds for a single Docker Engine API request."
    ).tag(config=True)

    image = Unicode(
        "berth/base-notebook:latest",
        help="""The image for users' servers unless they pick one of ``allowed_images``.

        Any docker-stacks compatible image works (its CMD must start jupyterhub-singleuser when
        ``JUPYTERHUB_API_TOKEN`` is set, as ``start-notebook.py`` does).""",
    ).tag(config=True)

    allowed_images = or_callable(
        List(Unicode()),
        Dict(Unicode()),
        default=[],
        help="""Images users may choose from.

        A list of images, a dict of display name -> image, or a callable taking the spawner and
        returning either (may be async). Empty: only ``image``. With more than one choice an
        options form is offered; the choice (``user_options["image"]``, from the form or the REST
        API) is checked on the server and anything else is refused with a 403 error.""",
    )

    snapshot_images = Bool(
        False,
        help="""Offer each user their own snapshots (images `berth snapshot` committed from
        their servers, labelled with the owner and this spawner's ``prefix``) besides
        ``allowed_images``, as "Snapshot NAME", and those an admin shared with them (`berth
        snapshot share`: a label naming them on the image) as "Snapshot NAME from OWNER". Any
        other snapshot is refused like any image that is not offered: the choice is checked
        against the engine's labels at each start, not against the form.""",
    ).tag(config=True)

    pull_policy = CaselessStrEnum(
        ["ifnotpresent", "always", "never"],
        default_value="ifnotpresent",
        help="""When to pull the image: ``ifnotpresent`` (only when missing on the host),
        ``always`` (before every start; a failed pull fails the start) or ``never`` (a missing
        image fails the start with a clear message).""",
    ).tag(config=True)

    prefix = Unicode(
        "berth",
        help="Value of ``{prefix}`` in ``name_template`` and volume templates.",
    ).tag(config=True)

    name_template = Unicode(
        "{prefix}-{username}{server_suffix}",
        help="""Container name template.

        Fields: ``{prefix}``, ``{username}`` and ``{servername}`` (escaped by
        :func:`berth.names.escape`, never containing ``_`` or ``.``), ``{server_suffix}`` (empty
        for the default server, ``_`` + escaped server name otherwise). The default never lets two
        users or servers collide; see :mod:`berth.names` before changing it.""",
    ).tag(config=True)

    volumes = Dict(
        help="""Volumes to mount read-write: ``{source: target}``.

        ``source`` is a named volume (e.g. ``"{prefix}-{username}"``, created on first use with
        the container user as owner of its root) or an absolute host path (mounted as is; create
        it beforehand with the right owner). Both sides take the ``name_template`` fields.
        ``target`` may also be ``{"bind": path, "mode": "ro"}``.""",
    ).tag(config=True)

    read_only_volumes = Dict(
        help="Like ``volumes`` but mounted read-only: ``{source: target}``."
    ).tag(config=True)

    adopt_unlabelled_volumes = Bool(
        False,
        help="""Mount existing named volumes that carry no Berth owner labels (volumes from
        DockerSpawner or made by hand) when a user's volume template names them. Off by default:
        a name made from a user's name could otherwise be someone else's volume. Turn it on for a
        migration, then off again. Volumes labelled for another user, another deployment or a
        deleted account, and the hub's data volume, are refused whatever this says.""",
    ).tag(config=True)

    network_name = Unicode(
        "",
        help="""Docker network to attach containers to (must exist). Empty: the default
        bridge network.""",
    ).tag(config=True)

    use_internal_ip = Bool(
        False,
        help="""Reach servers by their address on ``network_name`` (the hub must be able to route
        there, e.g. it runs on that network). False: publish the server port on ``host_ip``
        with an engine-chosen port and connect there.""",
    ).tag(config=True)

    host_ip = Unicode(
        "127.0.0.1",
        help="Host address that server ports are published on when ``use_internal_ip`` is off.",
    ).tag(config=True)

    remove = Bool(
        True,
        help="""Remove containers when their server stops (volumes are always kept). False keeps
        a stopped container (for ``docker logs``) until the server's next start replaces it.""",
    ).tag(config=True)

    run_as_root = Bool(
        False,
        help="""Start the container as root so the image's start script can apply ``NB_UID``,
        ``NB_GID``, ``NB_USER``, ``CHOWN_HOME`` or ``GRANT_SUDO`` before switching to the user.
        Implied when any of those is in ``environment``; see :mod:`berth.spawner.specs` for the
        capabilities this adds.""",
    ).tag(config=True)

    extra_create_kwargs = or_callable(
        Dict(),
        default={},
        help="""Extra keyword arguments for ``docker.APIClient.create_container`` (or a callable of
        the spawner returning them), merged over Berth's own (dicts merge, other values
        replace).""",
    )

    extra_host_config = or_callable(
        Dict(),
        default={},
        help="""Extra keyword arguments for ``docker.APIClient.create_host_config`` (or a callable
        of the spawner returning them), merged over Berth's own (e.g. a device request for a
        driver other than the one ``gpus`` asks for).""",
    )

    gpus = or_callable(
        Dict(),
        default={},
        help="""GPUs per image or profile: ``{image or display name of allowed_images: request}``
        (or a callable of the spawner returning that dict, for per-user decisions). A request is
        ``"all"``, a count, or a list of GPU indexes or UUIDs, as ``docker run --gpus`` takes
        them; the server gets them as an engine device request with the ``gpu`` capability.
        A profile's entry (its display name) wins over its image's, so two profiles of one image
        can differ; the options form says which choices come with GPUs. The host needs NVIDIA's
        driver and Container Toolkit (see docs/spawner.md, GPUs). Not on the Swarm back end.""",
    )

    post_start_cmd = Union(
        [Unicode(), List(Unicode())],
        default_value="",
        help="""Command run in the container (as its user) right after it starts, e.g. to fetch
        course material. A string runs through ``/bin/sh -c``. A failure is logged and reported
        as a progress event, not fatal.""",
    ).tag(config=True)

    stop_timeout = Integer(
        10, help="Seconds between SIGTERM and SIGKILL when a server is stopped gracefully."
    ).tag(config=True)

    wait_for_ready = Bool(
        True,
        help="""Let ``start`` return only once the server answers HTTP (or its container exits).
        This is what turns a server that crashes or runs out of memory during start-up into a
        clear error message instead of a timeout.""",
    ).tag(config=True)

    adaptive_admission = Bool(
        True,
        help="""Decide how many servers boot at once (container start until the server answers)
        from what the host shows: CPUs + 1 on a quiet host, more while other work competes for
        the CPU (its run queue), fewer when recent boots took more than a third of
        ``boot_timeout``; never more than ``max_concurrent_boots``. Off: exactly
        ``max_concurrent_boots`` at once. See docs/spawner.md, Admission.""",
    ).tag(config=True)

    max_concurrent_boots = Integer(
        help="""At most this many containers of this hub booting (from container start until
        the server answers) at once; 0 = no limit. Default with ``adaptive_admission``: 16 per
        CPU of the hub's host, at most one per 512 MiB of its memory (a ceiling; the number
        admitted follows the load below it); without: one more than the number of CPUs.
        Spawns beyond it wait in a first-come, first-served queue (one slot per user at a
        time), see their place in it on the spawn page, and the time spent there does not
        count against ``boot_timeout``. Pulls, volume setup and container creation are never
        queued.""",
    ).tag(config=True)

    @default("max_concurrent_boots")
    def _default_max_concurrent_boots(self) -> int:
        if self.adaptive_admission:
            return limits.default_boot_ceiling()
        return (os.cpu_count() or 2) + 1

    boot_slot_hold = Float(
        10.0,
        help="""Shortest time after which a boot that has not answered gives its slot back to
        the queue (it goes on booting): three times as long as the other boots take, when that
        is longer. A hanging server thus never holds up the others for long, and boots all
        slow together on a loaded host keep their slots.""",
    ).tag(config=True)

    boot_timeout = Integer(
        120,
        min=1,
        help="""Seconds a start may take outside the boot queue: image check, volumes, container
        start and the server's boot until it answers. Past it the start fails with a message
        saying so. The time spent waiting in the queue is not counted; JupyterHub's
        ``start_timeout`` (default 600 here) bounds the whole start, queue included: a spawn
        waits in the queue at most ``start_timeout`` - ``boot_timeout`` - 15 s (at least half of
        ``start_timeout``), then boots without waiting further.""",
    ).tag(config=True)

    volume_init_timeout = Float(
        60.0, help="Seconds allowed for chown-ing the root of a freshly created volume."
    ).tag(config=True)

    # JupyterHub's own limits, extended to accept callables of the spawner (evaluated at start),
    # with defaults: a server without limits can take the whole host down.
    mem_limit = Union(
        [Callable(), ByteSpecification(allow_none=True)],
        allow_none=True,
        help="""Memory limit: bytes, a K/M/G/T string, or a callable of the spawner returning one;
        ``None`` or ``0``: no limit. Default: 2G, or a quarter of the hub host's memory when that
        is less. Swap is limited to the same amount, so the limit is a hard one: past it the
        kernel's OOM killer ends the largest process in the container.""",
    ).tag(config=True)

    @default("mem_limit")
    def _default_mem_limit(self) -> int:
        return limits.default_mem_limit()

    cpu_limit = Union(
        [Callable(), Float(allow_none=True)],
        allow_none=True,
        help="""CPU limit in cores (e.g. 0.5, 2), or a callable of the spawner returning one;
        ``None`` or ``0``: no limit. Default: 1 on hosts with up to 4 CPUs, else 2.""",
    ).tag(config=True)

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return limits.default_cpu_limit()

    pids_limit = Integer(
        limits.DEFAULT_PIDS_LIMIT,
        min=0,
        help="""Most processes and threads one server may have at once (the container's pids
        cgroup); 0: no limit. A fork bomb then fails with "Resource temporarily unavailable"
        inside its own container instead of exhausting the host's process table.""",
    ).tag(config=True)
