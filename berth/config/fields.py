"""Value types shared by the berth.yaml models: each check says what was expected, in words.

Validators raise ``ValueError`` with a message meant for the operator; the loader shows it
next to the key path. They never echo secrets.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator

# JupyterHub keeps user names in a 255-character column (orm.User.name).
MAX_USERNAME_LENGTH = 255
_YAML_BOOL_HINT = (
    "YAML reads yes/no/on/off/true/false as booleans and bare digits as numbers: quote the name"
)


def check_username(value: Any) -> str:
    """A JupyterHub-safe user name, lowercased as JupyterHub's default normalization does.

    Refused: non-strings, empty or blank names, whitespace anywhere (NativeAuthenticator
    refuses spaces), ``/`` and ``,`` (URL path / NativeAuthenticator), names made only of dots
    (they resolve to URL path segments), control characters, and over-long names.
    """
    if isinstance(value, bool | int | float):
        raise ValueError(f"expected a user name, got {value!r} ({_YAML_BOOL_HINT})")
    if not isinstance(value, str):
        raise ValueError(f"expected a user name (a string), got {type(value).__name__}")
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
    if len(value) > MAX_USERNAME_LENGTH:
        raise ValueError(f"user name is longer than {MAX_USERNAME_LENGTH} characters")
    return value.lower()


Username = Annotated[str, BeforeValidator(check_username)]

# --- memory --------------------------------------------------------------------------------

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_BYTES_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTkmgt]?)\s*$")
# Docker refuses memory limits below 6 MiB; catching it here saves a failed spawn later.
MIN_MEMORY = 6 * 1024**2
MEMORY_EXPECTED = "an integer number of bytes or a number with suffix K, M, G or T (e.g. 512M, 2G)"


def parse_bytes(value: Any) -> int | None:
    """``2G`` -> 2147483648 (units of 1024, as JupyterHub's ByteSpecification); None passes."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected {MEMORY_EXPECTED}, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and (match := _BYTES_RE.match(value)):
        digits, unit = match.groups()
        number = int(float(digits) * _UNITS[unit.upper()])
    else:
        raise ValueError(f"expected {MEMORY_EXPECTED}, got {value!r}")
    if number < 0:
        raise ValueError(f"memory cannot be negative (got {value!r})")
    if 0 < number < MIN_MEMORY:  # 0 means "no limit"
        raise ValueError(f"memory must be at least 6M, Docker's minimum (got {value!r})")
    return number


MemorySize = Annotated[int | None, BeforeValidator(parse_bytes)]

# --- Docker names and image references -----------------------------------------------------

DOCKER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def check_docker_name(value: str) -> str:
    if not DOCKER_NAME_RE.match(value) or len(value) > 255:
        raise ValueError(
            f"{value!r} is not a valid Docker name: 2 to 255 characters from a-z A-Z 0-9 _ . -, "
            "starting with a letter or digit"
        )
    return value


DockerName = Annotated[str, BeforeValidator(lambda v: check_docker_name(_need_str(v)))]

# The reference grammar of the distribution spec: [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])"
_IMAGE_RE = re.compile(
    rf"^(?:{_HOST}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$"
)


def check_image(value: Any) -> str:
    value = _need_str(value)
    if not _IMAGE_RE.match(value):
        lower_ok = value != value.lower() and _IMAGE_RE.match(value.lower())
        hint = " (repository names must be lowercase)" if lower_ok else ""
        raise ValueError(
            f"{value!r} is not a valid image reference like 'berth/base-notebook:latest' or "
            f"'registry.example.org:5000/team/image:1.0'{hint}"
        )
    return value


ImageRef = Annotated[str, BeforeValidator(check_image)]

# --- paths, names, hosts, URLs -------------------------------------------------------------


def check_container_path(value: Any) -> str:
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


def check_service_name(value: Any) -> str:
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


def check_hostname(value: Any) -> str:
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


def check_ip(value: Any) -> str:
    value = _need_str(value)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(
            f"expected an IP address such as 0.0.0.0, 127.0.0.1 or ::, got {value!r}"
        ) from None


IPAddress = Annotated[str, BeforeValidator(check_ip)]


def check_url(value: Any) -> str:
    value = _need_str(value)
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"expected an absolute https:// URL, got {value!r}")
    return value


HttpUrl = Annotated[str, BeforeValidator(check_url)]


def _need_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
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
