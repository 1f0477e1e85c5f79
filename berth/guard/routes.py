"""The engine guard's route tables: the Engine API calls the hub may make, and what each is on.

One table per engine: a single engine (the container spawner's calls) and a Swarm manager
(``--swarm``: the Swarm spawner's). A call in neither table is refused by :mod:`.policy`.
"""

from __future__ import annotations

import re

# (method, path pattern, what the call is on). A ``ref`` group names an existing object that
# must be Berth's; its kind is the third field.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", r"/_ping", "engine"),
    ("HEAD", r"/_ping", "engine"),
    ("GET", r"/version", "engine"),
    ("POST", r"/containers/create", "container-create"),
    ("GET", r"/containers/json", "container-list"),
    ("GET", r"/containers/(?P<ref>[^/]+)/json", "container"),
    ("GET", r"/containers/(?P<ref>[^/]+)/logs", "container"),
    ("POST", r"/containers/(?P<ref>[^/]+)/(?:start|stop|kill|wait)", "container"),
    ("DELETE", r"/containers/(?P<ref>[^/]+)", "container"),
    ("POST", r"/containers/(?P<ref>[^/]+)/exec", "exec-create"),
    ("POST", r"/exec/(?P<ref>[^/]+)/(?:start|resize)", "exec"),
    ("GET", r"/exec/(?P<ref>[^/]+)/json", "exec"),
    ("GET", r"/images/json", "image-list"),
    ("GET", r"/images/(?P<image>.+)/json", "image"),
    ("POST", r"/images/create", "pull"),
    ("POST", r"/volumes/create", "volume-create"),
    ("GET", r"/volumes/(?P<ref>[^/]+)", "volume"),
    # The spawner's clean-up of a preparation a killed hub cut short. Only this deployment's
    # labelled volumes: a hub could destroy those anyway (a container that mounts them).
    ("DELETE", r"/volumes/(?P<ref>[^/]+)", "volume"),
    ("GET", r"/networks/(?P<network>[^/]+)", "network"),
    ("POST", r"/networks/(?P<network>[^/]+)/(?:connect|disconnect)", "network-connect"),
)
# On a Swarm manager (``--swarm``), the Swarm spawner's calls instead: no containers, execs,
# volumes or images (a server's container and volumes are made by its node), and nothing of the
# Swarm itself (secrets, configs, nodes' settings, swarm init/join/leave, plugins, updates).
SWARM_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", r"/_ping", "engine"),
    ("HEAD", r"/_ping", "engine"),
    ("GET", r"/version", "engine"),
    ("POST", r"/services/create", "service-create"),
    ("GET", r"/services/(?P<ref>[^/]+)", "service"),
    ("GET", r"/services/(?P<ref>[^/]+)/logs", "service"),
    ("DELETE", r"/services/(?P<ref>[^/]+)", "service"),
    ("GET", r"/tasks", "task-list"),
    ("GET", r"/tasks/(?P<ref>[^/]+)", "task"),
    ("GET", r"/nodes", "engine"),  # read-only: where servers run, and their nodes' state
    ("GET", r"/nodes/[A-Za-z0-9][A-Za-z0-9_.-]{0,254}", "engine"),
    ("GET", r"/networks/(?P<network>[^/]+)", "network"),
)


def compile_routes(
    routes: tuple[tuple[str, str, str], ...],
) -> tuple[tuple[str, re.Pattern[str], str], ...]:
    return tuple((method, re.compile(f"^{path}$"), kind) for method, path, kind in routes)


COMPILED = compile_routes(ROUTES)
SWARM_COMPILED = compile_routes(SWARM_ROUTES)
SUBJECT_KIND = {
    "container": "container",
    "exec-create": "container",
    "exec": "exec",
    "service": "service",
    "task": "task",
}
# The calls that carry a JSON body; every other call must come without one. (An old API
# version's container start reads a whole HostConfig from its body: privileged, binds, ...)
WITH_BODY = frozenset(
    {
        "container-create",
        "exec-create",
        "exec",
        "volume-create",
        "network-connect",
        "service-create",
    }
)
