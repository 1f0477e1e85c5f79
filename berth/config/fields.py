"""Value types shared by the berth.yaml models: each check says what was expected, in words.

Validators raise ``ValueError`` with a message meant for the operator; the loader shows it
next to the key path. They never echo secrets.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import unicodedata
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator

from berth import names, sizes

# JupyterHub keeps user names in a 255-character column (orm.User.name).
MAX_USERNAME_LENGTH = 255
_YAML_BOOL_HINT = (
    "YAML reads yes/no/on/off/true/false as booleans and bare digits as numbers: quote the name"
)


# A wrong value is quoted at most this long in a message.
MAX_SHOWN = 100


def describe(value: Any) -> str:
    """A wrong value as a message shows it: as YAML would write it, never Python's repr of a
    date, of bytes, or of a list or mapping (which aliases can make huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 3]}..."
    if isinstance(value, datetime.date):  # datetime is a date too
        return f"the date {value.isoformat()}"
    if isinstance(value, bytes):
        return "binary data (!!binary)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, set | frozenset):
        return "a set (!!set)"
    return f"a {type(value).__name__}"


def check_username(value: object) -> str:
    """A JupyterHub-safe user name, lowercased as JupyterHub's default normalization does.

    Refused: non-strings, empty or blank names, whitespace anywhere (NativeAuthenticator
    refuses spaces), ``/`` and ``,`` (URL path / NativeAuthenticator), names made only of dots
    (they resolve to URL path segments), control and invisible formatting characters,
    undecodable bytes, and over-long names.
    """
    if isinstance(value, bool | int | float):
        raise ValueError(f"expected a user name, got {describe(value)} ({_YAML_BOOL_HINT})")
    if not isinstance(value, str):
        raise ValueError(f"expected a user name (a string), got {describe(value)}")
    if not value.strip():
        raise ValueError("a user name cannot be empty or blank")
    if any(ch.isspace() for ch in value):
        raise ValueError(f"user name {value!r} contains whitespace")
    for bad in "/,":
        if bad in value:
            raise ValueError(f"user name {value!r} contains {bad!r}, which JupyterHub refuses")
    if set(value) == {"."}:
        raise ValueError(f"user name {value!r} is only dots")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"user name {value!r} contains a control character")
    if any("\ud800" <= ch <= "\udfff" for ch in value):  # undecodable bytes in argv
        raise ValueError(f"user name {value!r} is not valid UTF-8 text")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        # Zero-width and direction marks make a name that looks like another one.
        raise ValueError(f"user name {value!r} contains an invisible or control character")
    if len(value) > MAX_USERNAME_LENGTH:
        raise ValueError(f"user name is longer than {MAX_USERNAME_LENGTH} characters")
    return value.lower()


def check_account_name(value: object) -> str:
    """A user name an account may be made for: :func:`check_username`, and not one of the
    names of Berth's own parts (:data:`berth.names.RESERVED_USER_NAMES`)."""
    name = check_username(value)
    if names.is_reserved_user_name(name):
        raise ValueError(names.reserved_name_message(name))
    return name


Username = Annotated[str, BeforeValidator(check_account_name)]

# --- memory --------------------------------------------------------------------------------

# Docker refuses memory limits below 6 MiB; catching it here saves a failed spawn later.
MIN_MEMORY = 6 * 1024**2


def parse_memory(value: Any) -> int | None:
    """A memory limit: a byte size (:mod:`berth.sizes`, e.g. ``2G``) of at least Docker's
    minimum, or 0 for "no limit"; None passes."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | None):
        raise ValueError(f"expected {sizes.EXPECTED}, got {describe(value)}")
    number = sizes.parse_bytes(value)
    if number is not None and 0 < number < MIN_MEMORY:  # 0 means "no limit"
        raise ValueError(f"memory must be at least 6M, Docker's minimum (got {describe(value)})")
    return number


MemorySize = Annotated[int | None, BeforeValidator(parse_memory)]

# --- Docker names and image references -----------------------------------------------------


def check_docker_name(value: str) -> str:
    """A volume or network name Docker accepts (:func:`berth.names.check_docker_name`)."""
    return names.check_docker_name(value, "the")


DockerName = Annotated[str, BeforeValidator(lambda v: check_docker_name(_need_str(v)))]

# The reference grammar of the distribution spec: [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])"
_IMAGE_RE = re.compile(
    rf"^(?:{_HOST}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$"
)


# The engine refuses repository names (host and path, without tag or digest) longer than this.
MAX_REPOSITORY_LENGTH = 255


def check_image(value: object) -> str:
    value = _need_str(value)
    if _IMAGE_RE.match(value) and len(_repository(value)) > MAX_REPOSITORY_LENGTH:
        raise ValueError(
            f"image name {describe(value)} is longer than {MAX_REPOSITORY_LENGTH} characters "
            "(without its tag), which the engine refuses"
        )
    if not _IMAGE_RE.match(value):
        lower_ok = value != value.lower() and _IMAGE_RE.match(value.lower())
        hint = " (repository names must be lowercase)" if lower_ok else ""
        raise ValueError(
            f"{value!r} is not a valid image reference like 'berth/base-notebook:latest' or "
            f"'registry.example.org:5000/team/image:1.0'{hint}"
        )
    return value


def _repository(reference: str) -> str:
    """``host:5000/a/b:tag@sha256:...`` -> ``host:5000/a/b`` (a tag never contains "/")."""
    name = reference.split("@", 1)[0]
    head, colon, tail = name.rpartition(":")
    return head if colon and "/" not in tail else name


ImageRef = Annotated[str, BeforeValidator(check_image)]

# --- paths, names, hosts, URLs -------------------------------------------------------------


def check_container_path(value: object) -> str:
    """An absolute path inside a container, normalised (no trailing slash, no ``..``)."""
    value = _need_str(value)
    path = PurePosixPath(value)
    if not path.is_absolute():
        raise ValueError(f"expected an absolute path inside the container, got {value!r}")
    if ".." in path.parts:
        raise ValueError(f"path {value!r} must not contain '..'")
    if path == PurePosixPath("/"):
        raise ValueError("cannot mount over the container's root directory '/'")
    return str(path)


ContainerPath = Annotated[str, BeforeValidator(check_container_path)]

# Service names become URL path segments (/services/<name>) and role names (service-<name>),
# so they keep to what JupyterHub's role-name rule accepts.
_SERVICE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")


def check_service_name(value: object) -> str:
    value = _need_str(value)
    if not _SERVICE_RE.match(value):
        raise ValueError(
            f"service name {value!r} must be 1 to 63 characters from a-z 0-9 - _, "
            "starting and ending with a letter or digit"
        )
    return value


ServiceName = Annotated[str, BeforeValidator(check_service_name)]

_DNS_RE = re.compile(
    r"^(?:\*\.)?(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*"
    r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)


def check_hostname(value: object) -> str:
    """A DNS name (``*.`` wildcard allowed) or an IP address, for certificate SANs."""
    value = _need_str(value)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _DNS_RE.match(value) or len(value) > 253:
        raise ValueError(f"{value!r} is neither a DNS name nor an IP address")
    return value.lower()


Hostname = Annotated[str, BeforeValidator(check_hostname)]


def check_ip(value: object) -> str:
    value = _need_str(value)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(
            f"expected an IP address such as 0.0.0.0, 127.0.0.1 or ::, got {value!r}"
        ) from None


IPAddress = Annotated[str, BeforeValidator(check_ip)]


def check_url(value: object) -> str:
    value = _need_str(value)
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"expected an absolute https:// URL, got {value!r}")
    return value


HttpUrl = Annotated[str, BeforeValidator(check_url)]


def _need_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {describe(value)}")
    if not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


class FieldProblem(ValueError):
    """A model-level check that knows which key (below the model) is at fault.

    Pydantic reports model validators at the model's own path; the loader appends ``key`` so
    the operator reads ``auth.native.open_signup`` rather than just ``auth.native``.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message
