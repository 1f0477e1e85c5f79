"""The settings the Swarm spawner adds to the container spawner's (all ``config=True``)."""

from __future__ import annotations

from traitlets import CaselessStrEnum, Dict, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from .settings import or_callable


class SwarmSettings(LoggingConfigurable):
    placement_constraints = or_callable(
        List(Unicode()),
        default=[],
        help="""Swarm placement constraints for every server, e.g. ``["node.labels.jupyter ==
        true"]``, or a callable of the spawner returning them (may be async).""",
    )

    placement_spread = or_callable(
        List(Unicode()),
        default=[],
        help="""Spread preferences (``node.labels.rack``): servers are spread evenly over the
        values of these node labels, in order. Empty: Swarm's default, which spreads by the
        number of tasks per node. A list or a callable of the spawner.""",
    )

    image_placement = Dict(
        help="""Extra placement per image: ``{image: {"constraints": [...], "spread":
        [...]}}``, added to ``placement_constraints`` / ``placement_spread`` when a server runs
        that image, e.g. ``{"reg:5000/berth/scipy-notebook:latest": {"constraints":
        ["node.labels.bigmem == true"]}}``.""",
    ).tag(config=True)

    volume_policy = CaselessStrEnum(
        ["pin", "shared"],
        default_value="pin",
        help="""Where users' named volumes live. ``pin``: on the node a server first ran on
        (Docker's ``local`` driver); later starts are pinned to that node, and fail with a clear
        message when it is down or drained, never with an empty home elsewhere. ``shared``: the
        volumes are created with ``volume_driver``/``volume_driver_options`` on shared storage
        (e.g. NFS), so a server may start on any node.""",
    ).tag(config=True)

    volume_driver = Unicode(
        "local",
        help="Volume driver for named volumes (``volume_policy = 'shared'``).",
    ).tag(config=True)

    volume_driver_options = Dict(
        Unicode(),
        help="""Driver options for named volumes, with the ``name_template`` fields, e.g. NFS
        through the local driver: ``{"type": "nfs", "o": "addr=10.0.0.5,rw,nfsvers=4",
        "device": ":/export/{username}"}``.""",
    ).tag(config=True)

    schedule_timeout = Float(
        60.0,
        help="""Seconds a server may wait for a node with room for it (the task is pending with
        the scheduler's reason) before the start fails with that reason in plain words.""",
    ).tag(config=True)

    fence_wait = Float(
        60.0,
        help="""Seconds a new server waits, before its command starts, for berth-fence (a
        global service, docs/deploy.md) to fence its network; a server not fenced by then exits
        and the start fails naming the fence. 0: no wait, for a Swarm without the fence, where
        servers on the overlay reach each other's ports, the proxy's API and the nodes.""",
    ).tag(config=True)

    image_commands = Dict(
        value_trait=List(Unicode()),
        help="""Each image's CMD, ``{image: [command, ...]}``, for the wait for berth-fence to
        start (``fence_wait``); an image not listed is read on the manager (pulled there if
        missing). `berth up` fills it from the images it pushes, so the hub never asks.""",
    ).tag(config=True)

    extra_task_template = or_callable(
        Dict(),
        default={},
        help="""Extra Engine API ``TaskTemplate`` JSON (or a callable of the spawner returning it),
        merged over Berth's own, e.g. ``{"ContainerSpec": {"Hostname": "x"}}``.""",
    )
