"""The engine guard's policy, as pure functions: a request (and the labels of the objects it
touches) in, allow or refuse out.

Only the calls Berth's spawner makes are allowed (:data:`ROUTES`); everything else is refused.
A decision is made in two steps, so that this module never does I/O:

1. :func:`needs` names the existing objects whose labels decide (the container a call is on, the
   volumes a new container mounts, ...);
2. the server looks them up on the engine and :func:`decide` judges with what it found.

An allowed call on an existing container is forwarded with the container's full Id in place of
the name it was asked by, so the object that was judged is the object that is acted on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote

from berth.labels import LABEL_MANAGED, LABEL_PREFIX, LABEL_SNAPSHOT_PREFIX

from . import homes
from .bodies import (
    Limits,
    Refused,
    check_container_create,
    check_exec_create,
    check_volume_create,
    home_root_of,
    host_path_allowed,
    managed,
    network_connect_container,
    parse_json,
)

_VERSION = re.compile(r"^(/v[0-9]+(?:\.[0-9]+)*)(/.*)$")
_OBJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_DOCKER_HUB = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")

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
_COMPILED = tuple((method, re.compile(f"^{path}$"), kind) for method, path, kind in ROUTES)
_SUBJECT_KIND = {"container": "container", "exec-create": "container", "exec": "exec"}
# The calls that carry a JSON body; every other call must come without one. (An old API
# version's container start reads a whole HostConfig from its body: privileged, binds, ...)
_WITH_BODY = frozenset(
    {"container-create", "exec-create", "exec", "volume-create", "network-connect"}
)
# Older API versions read host settings from more places (the body of a container start below
# 1.24, among others); docker-py negotiates the engine's own version (1.41 on Docker 20.10).
MIN_API_VERSION = (1, 40)


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the request target as sent: path and query, percent-encoded
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    @property
    def path(self) -> str:
        """The path without the query (for logs: a query may name things, never a body)."""
        return self.target.partition("?")[0]


@dataclass(frozen=True)
class Ref:
    """An existing object: kind ``container``, ``exec`` or ``volume`` and its name or Id on the
    engine, or ``hostpath`` and an allowed host path (found: the path its symlinks lead to),
    or ``home`` and a home directory that a container running as ``who`` mounts (found: a
    HostDir)."""

    kind: str
    name: str
    who: homes.Identity | None = None


@dataclass(frozen=True)
class Found:
    """What the engine says about a :class:`Ref`: its full Id and labels (for an exec: those of
    its container)."""

    id: str
    labels: Mapping[str, str]


Facts = Mapping[Ref, "Found | homes.HostDir | None"]  # None: no such object


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    target: str = ""  # what to forward upstream
    missing: Ref | None = None  # allowed, but the object does not exist: answer 404

    @property
    def message(self) -> str:
        return f"berth engine guard: {self.reason}"


@dataclass(frozen=True)
class Plan:
    """A parsed, route-matched request: what it acts on and which objects must be Berth's."""

    version: str
    template: str  # the path with ``{}`` where the subject's name stood
    query: str
    subject: Ref | None = None
    others: tuple[Ref, ...] = ()


def _clean_path(raw: str) -> str:
    """The path as the engine's router sees it (decoded once); refuses anything ambiguous."""
    if not raw.startswith("/"):
        raise Refused("the request target must be a path")
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise Refused("the request path is not UTF-8") from exc
    segments = path.split("/")[1:]
    if any(seg in {"", ".", ".."} for seg in segments) or any(c in path for c in "%?#\\"):
        raise Refused(f"unusual request path {raw!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise Refused("control characters in the request path")
    return path


# A request's query string as parse_qs reads it: parameter -> every value it was given.
Query = dict[str, list[str]]


def _first(query: Query, key: str) -> str:
    values = query.get(key) or [""]
    return values[0]  # the engine (Go's url.Values.Get) reads the first value too


def pull_refusal(image: str) -> str:
    """Why pulling ``image`` is refused, or ``""``: Berth's own images are never pulled."""
    name = image.lower()
    for host in _DOCKER_HUB:
        if name.startswith(host):
            name = name[len(host) :]
    if name.startswith("berth/"):
        return (
            f"{image!r} is one of Berth's images: they are built on this host "
            "(berth images build), never pulled"
        )
    return ""


_LIST_PARAMETERS = frozenset({"all", "filters", "limit", "size", "trunc_cmd"})  # as docker-py sends


_IMAGE_LIST_PARAMETERS = frozenset({"all", "filters", "only_ids"})  # as docker-py sends


def _label_filters(query: Query, what: str) -> list[str]:
    """The label filters of a listing's query, which may filter by label only."""
    try:
        filters = parse_json(_first(query, "filters").encode() or b"{}")
    except Refused as exc:
        raise Refused(f"{what} filters: {exc}") from exc
    if not isinstance(filters, dict) or set(filters) != {"label"}:
        article = "an" if what[0] in "aeiou" else "a"
        raise Refused(f"{article} {what} must filter by label only")
    wanted = filters["label"]
    if isinstance(wanted, dict):  # the engine's older form: {"key=value": true}
        wanted = [key for key, on in wanted.items() if on is True]
    if not isinstance(wanted, list) or not all(isinstance(item, str) for item in wanted):
        raise Refused(f"{what} label filters must be strings")
    return wanted


def check_image_list_filters(query: Query, limits: Limits) -> None:
    """An image listing (the spawner's look for a user's snapshots) is confined to this
    deployment's snapshots by the engine's label filter: names and labels of other images
    stay unseen."""
    if set(query) - _IMAGE_LIST_PARAMETERS or any(len(v) != 1 for v in query.values()):
        raise Refused("an image listing takes only the all, filters and only_ids parameters")
    required = f"{LABEL_SNAPSHOT_PREFIX}={limits.prefix}"
    if required not in _label_filters(query, "image listing"):
        raise Refused(f"an image listing must filter by the label {required}")


def check_list_filters(query: Query, limits: Limits) -> None:
    """A container listing must be confined, by the engine's own label filter, to this
    deployment's objects (the engine ANDs label filters, so more labels only narrow it)."""
    if set(query) - _LIST_PARAMETERS or any(len(v) != 1 for v in query.values()):
        raise Refused(
            "a container listing takes only the all, filters, limit, size and "
            "trunc_cmd parameters, once each"
        )
    wanted = _label_filters(query, "container listing")
    required = {f"{LABEL_MANAGED}=true", f"{LABEL_PREFIX}={limits.prefix}"}
    if not required <= set(wanted):
        raise Refused(
            f"a container listing must filter by the labels {LABEL_MANAGED}=true and "
            f"{LABEL_PREFIX}={limits.prefix}"
        )


def plan(request: Request, limits: Limits) -> Plan:
    """Match ``request`` to an allowed call and check its body; raises :class:`Refused`."""
    raw_path, _, raw_query = request.target.partition("?")
    full_path = _clean_path(raw_path)
    version, path = "", full_path
    if matched := _VERSION.match(full_path):
        version, path = matched.group(1), matched.group(2)
        if tuple(int(part) for part in version[2:].split(".")) < MIN_API_VERSION:
            minimum = ".".join(map(str, MIN_API_VERSION))
            raise Refused(f"API version {version[2:]} is older than {minimum}")
    if "form" in request.headers.get("content-type", "").lower():
        # The engine would read form fields from the body as if they were query parameters.
        raise Refused("form-encoded requests are not allowed")
    query = parse_qs(raw_query, keep_blank_values=True)
    method = request.method.upper()
    for route_method, pattern, kind in _COMPILED:
        if route_method != method or not (found := pattern.match(path)):
            continue
        template = path
        subject: Ref | None = None
        if "ref" in found.groupdict():
            name = found.group("ref")
            if not _OBJECT_NAME.match(name):
                raise Refused(f"unusual object name {name!r}")
            start, end = found.span("ref")
            template = path[:start] + "{}" + path[end:]
            subject = Ref(_SUBJECT_KIND.get(kind, kind), name)
        if request.body and kind not in _WITH_BODY:
            raise Refused(f"{method} {path} takes no request body")
        return Plan(
            version, template, raw_query, subject, _check(kind, found, query, request, limits)
        )
    raise Refused(f"the hub may not call {method} {path}")


def _check(
    kind: str, found: re.Match[str], query: Query, req: Request, limits: Limits
) -> tuple[Ref, ...]:
    """Route-specific checks; returns the other objects that must exist and be Berth's."""
    if kind == "container-create":
        sources = dict.fromkeys(check_container_create(req.body, limits))
        who = None
        if any(home_root_of(s, limits.home_roots) for s in sources):
            who = homes.container_identity(req.body)
        return tuple(_source_ref(s, limits, who) for s in sources)
    if kind == "container-list":
        check_list_filters(query, limits)
    elif kind == "image-list":
        check_image_list_filters(query, limits)
    elif kind == "exec-create":
        check_exec_create(req.body)
    elif kind == "volume-create":
        check_volume_create(req.body, limits)
    elif kind == "pull":
        if "fromSrc" in query or "repo" in query:
            raise Refused("importing images is not allowed (only pulls)")
        image = _first(query, "fromImage")
        if not image:
            raise Refused("a pull needs fromImage")
        if reason := pull_refusal(image):
            raise Refused(reason)
    elif kind in {"network", "network-connect"}:
        network = found.group("network")
        if network not in limits.networks:
            raise Refused(f"network {network!r} is not one the hub may use")
        if kind == "network-connect":
            container = network_connect_container(req.body)
            if not _OBJECT_NAME.match(container):
                raise Refused(f"unusual container name {container!r}")
            return (Ref("container", container),)
    return ()


def _source_ref(source: str, limits: Limits, who: homes.Identity | None) -> Ref:
    if not source.startswith("/"):
        return Ref("volume", source)
    if who is not None and home_root_of(source, limits.home_roots):
        return Ref("home", source, who)
    return Ref("hostpath", source)


def needs(request: Request, limits: Limits) -> tuple[Ref, ...]:
    """The existing objects whose labels :func:`decide` needs (none for a refused request)."""
    try:
        planned = plan(request, limits)
    except Refused:
        return ()
    return ((planned.subject,) if planned.subject else ()) + planned.others


def _not_berths(ref: Ref, limits: Limits) -> str:
    return (
        f"{ref.kind} {ref.name!r} is not Berth's (it lacks the labels {LABEL_MANAGED}=true, "
        f"{LABEL_PREFIX}={limits.prefix})"
    )


def decide(request: Request, limits: Limits, facts: Facts) -> Decision:
    """Allow or refuse ``request``, knowing what :func:`needs` asked about."""
    try:
        planned = plan(request, limits)
    except Refused as exc:
        return Decision(False, str(exc))
    for ref in planned.others:
        other = facts.get(ref)
        if ref.kind == "home" and ref.who is not None:
            found_dir = other if isinstance(other, homes.HostDir) else None
            if refusal := homes.home_refusal(ref.name, ref.who, found_dir):
                return Decision(False, refusal)
            continue
        if isinstance(other, homes.HostDir):  # only ever the fact of a home
            return Decision(False, f"{ref.kind} {ref.name!r} is not a home")
        if ref.kind == "hostpath":
            if other is not None and not host_path_allowed(other.id, limits.allow_binds):
                return Decision(
                    False,
                    f"host path {ref.name!r} leads to {other.id!r} (a symbolic link), "
                    "outside the allowed paths",
                )
            continue  # None: the guard cannot see the tree; the path itself was checked
        if other is None:
            return Decision(False, f"{ref.kind} {ref.name!r} does not exist")
        if not managed(other.labels, limits.prefix):
            return Decision(False, _not_berths(ref, limits))
    if planned.subject is None:
        return Decision(True, target=request.target)
    subject = facts.get(planned.subject)
    if isinstance(subject, homes.HostDir):
        return Decision(False, f"{planned.subject.kind} {planned.subject.name!r} is not a home")
    if subject is None:
        return Decision(True, missing=planned.subject)
    if not managed(subject.labels, limits.prefix):
        return Decision(False, _not_berths(planned.subject, limits))
    path = planned.version + quote(planned.template.format(subject.id), safe="/:@")
    return Decision(True, target=path + (f"?{planned.query}" if planned.query else ""))
