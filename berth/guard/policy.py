"""The engine guard's policy, as pure functions: a request (and the labels of the objects it
touches) in, allow or refuse out.

Only the calls Berth's spawner makes are allowed (:mod:`.routes`); everything else is refused.
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
from urllib.parse import parse_qs, quote, quote_plus, unquote, urlencode

from berth.labels import LABEL_MANAGED, LABEL_PREFIX, LABEL_SNAPSHOT_PREFIX, LABEL_USER

from . import homes, routes, services
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

# Where a task listing's service goes in the forwarded query (its full ID, once looked up).
_SERVICE_ID = "@service@"  # "@" is in no object name (_OBJECT_NAME)
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
    """An existing object: kind ``container``, ``exec``, ``volume``, ``service`` or ``task``
    and its name or Id on the engine, or ``hostpath`` and an allowed host path (found: the path
    its symlinks lead to), or ``home`` and a home directory that a container running as ``who``
    mounts (found: a HostDir), or ``swarm-volume`` and a volume a user's service mounts (found
    on the manager, if there: it must be Berth's and, when it names a user, ``owner``'s)."""

    kind: str
    name: str
    who: homes.Identity | None = None
    owner: str = ""


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
    for route_method, pattern, kind in routes.SWARM_COMPILED if limits.swarm else routes.COMPILED:
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
            subject = Ref(routes.SUBJECT_KIND.get(kind, kind), name)
        if request.body and kind not in routes.WITH_BODY:
            raise Refused(f"{method} {path} takes no request body")
        if kind == "task-list":  # the one service it asks about is the subject
            if set(query) != {"filters"} or len(query["filters"]) != 1:
                raise Refused("a task listing takes only the filters parameter, once")
            service = services.task_list_service(query["filters"][0])
            if not _OBJECT_NAME.match(service):
                raise Refused(f"unusual service name {service!r}")
            forwarded = urlencode(
                {"filters": services.task_list_query(query["filters"][0], _SERVICE_ID)}
            )
            return Plan(version, template, forwarded, Ref("service", service))
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
    if kind == "service-create":
        user, _, mounted = services.check_service_create(req.body, limits)
        return tuple(Ref("swarm-volume", v, owner=user) for v in dict.fromkeys(mounted))
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
        if ref.kind == "swarm-volume":
            if refusal := _swarm_volume_refusal(ref, other, limits):
                return Decision(False, refusal)
            continue
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
    query = planned.query.replace(quote_plus(_SERVICE_ID), quote_plus(subject.id))
    return Decision(True, target=path + (f"?{query}" if query else ""))


def _swarm_volume_refusal(ref: Ref, found: Found | None, limits: Limits) -> str:
    """A volume a user's service mounts, as the manager's engine has it: absent (the node makes
    it), or Berth's and that user's. The hub's own volumes live here, without these labels."""
    if found is None:
        return ""
    if not managed(found.labels, limits.prefix):
        return (
            f"volume {ref.name!r} exists on the manager and "
            + _not_berths(ref, limits)[len(f"{ref.kind} {ref.name!r} ") :]
        )
    if found.labels.get(LABEL_USER, "") not in {"", ref.owner}:
        return f"volume {ref.name!r} belongs to another user"
    return ""
