"""Docker-safe, collision-free names for users' containers and volumes.

JupyterHub user names and server names are arbitrary Unicode strings (``Alice``, ``a.b``,
``zoë``, ``x-y``); Docker object names must match ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``, and a
container's name is also its DNS name on a user-defined network, where case does not count.

The escaping
------------
:func:`escape` keeps the characters ``a``-``z`` and ``0``-``9`` and writes every other *byte*
of the name's UTF-8 encoding as ``-`` followed by two lower-case hex digits::

    alice -> alice        Alice -> -41lice      a.b -> a-2eb      a-b -> a-2db
    a_b   -> a-5fb        zoë   -> zo-c3-ab     ""  -> ""

Python strings can also hold lone surrogates (``"\\ud800"`` in JSON or YAML, undecodable bytes
in argv); they are written as the three bytes UTF-8 would give them ("surrogatepass"), so
every string has an escape and no name can make :func:`escape` fail.

Why this is injective: a ``-`` in the output always starts a three-character escape and is
never a literal, so the output can be decoded left to right (the tests' decoder in
``tests/unit/name_decoder.py`` does so, for every name they try); two
different inputs therefore always give two different outputs. Upper case is escaped (not
folded), so ``Alice`` and ``alice`` stay apart even where names are compared without case
(DNS, case-insensitive file systems behind Docker Desktop).

Joining user and server names
-----------------------------
The output of :func:`escape` never contains ``_`` or ``.``, so either can separate escaped parts
without ambiguity. The spawners' template namespace (:func:`template_namespace`) offers

* ``{prefix}``        -- the operator's prefix, used as is (it must be a valid name itself);
* ``{username}``      -- ``escape(user name)``;
* ``{servername}``    -- ``escape(server name)``, empty for a user's default server;
* ``{server_suffix}`` -- empty for the default server, ``_`` + ``escape(server name)`` for a
  named server.

The default container name template ``{prefix}-{username}{server_suffix}`` gives
``berth-alice`` for Alice's default server and ``berth-alice_gpu`` for her server ``gpu``.
Because the suffix starts with ``_`` (which :func:`escape` never emits) and JupyterHub's named
servers have non-empty names, a named server can never collide with another user's default
server (``alice`` + ``gpu`` vs. a user called ``alice_gpu`` -> ``berth-alice-5fgpu``) nor with
another user's named server. An operator's own template is only collision-free if it keeps
these parts apart the same way; the spawner also labels every container with the raw user and
server names and refuses to adopt a container whose labels name someone else.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping

SAFE_CHARS = frozenset(string.ascii_lowercase + string.digits)
ESCAPE_CHAR = "-"
SERVER_SEPARATOR = "_"

#: What the Docker Engine accepts for container, volume and network names: at least two
#: characters (the engine refuses "a": "names should be at least two alphanumeric characters").
DOCKER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")  # not "$": it allows a final "\n"
#: Docker has no documented limit, but names end up in DNS (63 bytes per label is the
#: hard limit there) and in file system paths; we refuse names longer than this.
MAX_NAME_LENGTH = 255


class InvalidNameError(ValueError):
    """A rendered name is not acceptable to Docker."""


def escape(text: str) -> str:
    """Escape ``text`` into ``[a-z0-9-]*`` injectively (see the module docstring)."""
    out: list[str] = []
    for char in text:
        if char in SAFE_CHARS:
            out.append(char)
        else:
            encoded = char.encode("utf-8", "surrogatepass")
            out.extend(f"{ESCAPE_CHAR}{byte:02x}" for byte in encoded)
    return "".join(out)


def template_namespace(prefix: str, username: str, servername: str = "") -> dict[str, str]:
    """The fields available to name templates (container names, volume names, host paths)."""
    escaped_server = escape(servername)
    return {
        "prefix": prefix,
        "username": escape(username),
        "servername": escaped_server,
        "server_suffix": f"{SERVER_SEPARATOR}{escaped_server}" if servername else "",
    }


def render(template: str, namespace: Mapping[str, str]) -> str:
    """Fill ``template`` from ``namespace``; unknown fields raise ``InvalidNameError``."""
    try:
        return template.format_map(dict(namespace))
    except (KeyError, IndexError, ValueError) as exc:
        known = ", ".join("{" + key + "}" for key in namespace)
        raise InvalidNameError(
            f"cannot fill the name template {template!r}: {exc!r} (known fields: {known})"
        ) from exc


def check_docker_name(name: str, what: str = "container") -> str:
    """Return ``name`` if Docker accepts it as a container, volume or network name, else raise.

    The one check of Docker names: berth.yaml's fields (:mod:`berth.config.fields`), the
    spawners' rendered names and ``berth restore`` all call it.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"{what} name is longer than {MAX_NAME_LENGTH} characters")
    if not DOCKER_NAME_RE.match(name):
        raise InvalidNameError(
            f"{what} name {name!r} is not a valid Docker name: 2 to {MAX_NAME_LENGTH} "
            "characters from a-z A-Z 0-9 _ . -, starting with a letter or digit"
        )
    return name


#: The parts of Berth's own service on the engine are named ``berth-<part>`` (containers and
#: Swarm services: berth/deploy/layout.py, swarm_plan.py, fence.py; ``berth-cli`` is the hub
#: service of `berth users`), and their ``berth.deploy.role`` labels name the same parts. With
#: the default name template ``{prefix}-{username}…`` and the deployment's prefix ``berth``, a
#: user called ``hub`` would get a server container called ``berth-hub``: so no user may take
#: one of these names (sign-up, login, `berth users add`, berth.yaml). tests/unit keep the list
#: in step with the deployment's names.
RESERVED_USER_NAMES = frozenset(
    {"hub", "proxy", "engine-guard", "guard", "firewall", "acme", "backup", "registry", "fence",
     "cli"}
)  # fmt: skip

RESERVED_NAME_MESSAGE = (
    "The name {name!r} is reserved: Berth's own parts are called so ({names}). "
    "Choose another user name."
)


def is_reserved_user_name(name: str) -> bool:
    """Whether ``name`` is (up to case and Unicode compatibility forms) a name of Berth's own."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return folded in RESERVED_USER_NAMES


def reserved_name_message(name: str) -> str:
    """The one message every refusal of a reserved user name gives."""
    return RESERVED_NAME_MESSAGE.format(name=name, names=", ".join(sorted(RESERVED_USER_NAMES)))
