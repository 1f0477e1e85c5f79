"""Facts about this host that `berth up` needs: the names it answers to, the socket's group,
the DNS servers the engine forwards containers' queries to."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import stat
from pathlib import Path

from berth.errors import BerthError

DOCKER_SOCKET = Path("/var/run/docker.sock")
BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
DAEMON_JSON = Path("/etc/docker/daemon.json")
RESOLV_CONF = Path("/etc/resolv.conf")
# Where systemd-resolved lists the real servers; the engine reads it when /etc/resolv.conf
# names only the local stub (127.0.0.53).
SYSTEMD_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")


def host_names(listen_address: str) -> list[str]:
    """Host name, FQDN, localhost and this host's addresses, for a self-signed certificate."""
    names = [socket.gethostname(), socket.getfqdn(), "localhost"]
    addresses = ["127.0.0.1", "::1"]
    if listen_address not in ("0.0.0.0", "::"):
        addresses.append(listen_address)
    try:
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
            addresses.append(str(sockaddr[0]))
    except OSError:
        pass  # a host name that does not resolve still gets localhost and loopback
    return list(dict.fromkeys(n for n in [*names, *addresses] if n and "%" not in n))


def socket_gid(path: Path = DOCKER_SOCKET) -> int:
    """The group that may use the engine's socket (the hub runs with it, not as root)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise BerthError(
            f"no Docker socket at {path}: the hub container reaches the engine through it",
            hint="berth up needs a local engine listening on /var/run/docker.sock",
        ) from exc
    if not stat.S_ISSOCK(info.st_mode):
        raise BerthError(f"{path} is not a socket")
    return info.st_gid


def engine_socket(docker_host: str | None) -> Path:
    """The engine's socket on this host, as DOCKER_HOST names it (a local `unix://` path; the
    default socket otherwise): the guard and berth-backup get it mounted."""
    if docker_host and docker_host.startswith("unix://"):
        return Path(docker_host.removeprefix("unix://"))
    return DOCKER_SOCKET


def require_bridge_filtering(path: Path = BRIDGE_NF) -> None:
    """On Podman the firewall alone keeps user servers on the bridge apart, and it sees their
    traffic only when bridged packets pass through iptables (br_netfilter)."""
    try:
        value = path.read_text().strip()
    except OSError:
        value = "missing (br_netfilter is not loaded)"
    if value != "1":
        raise BerthError(
            f"{path} is {value}: on Podman, Berth's firewall keeps user servers apart only when "
            "traffic between containers on one bridge passes through iptables",
            hint="modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 "
            "(to keep it: br_netfilter in /etc/modules-load.d/, the setting in /etc/sysctl.d/)",
        )


def read_operator_tls(cert: Path, key: Path) -> tuple[bytes, bytes]:
    """Read the operator's certificate and key, with a clear error for each unreadable file."""
    out = []
    for what, path in (("certificate", cert), ("key", key)):
        try:
            out.append(path.read_bytes())
        except OSError as exc:
            raise BerthError(f"cannot read the TLS {what} {path}: {exc.strerror}") from exc
    if os.stat(key).st_mode & 0o004:
        raise BerthError(
            f"the TLS key {key} is readable by every user of this machine", hint=f"chmod 600 {key}"
        )
    return out[0], out[1]


def _nameservers(text: str) -> list[str]:
    fields = (line.split() for line in text.splitlines())
    return [f[1] for f in fields if len(f) >= 2 and f[0] == "nameserver"]


def dns_resolvers(
    daemon_json: Path = DAEMON_JSON,
    resolv_conf: Path = RESOLV_CONF,
    systemd_resolv_conf: Path = SYSTEMD_RESOLV_CONF,
) -> tuple[str, ...]:
    """The IPv4 servers the engine's DNS forwards containers' queries to, as the engine picks
    them: its own `dns` setting, else the host's resolv.conf (systemd-resolved's list when that
    names only loopback). Loopback ones are left out: the engine's resolver cannot reach them
    from a container. The firewall lets user servers reach these on port 53 only."""
    servers: list[str] = []
    with contextlib.suppress(OSError, ValueError, AttributeError):  # unreadable: not set
        servers = [str(s) for s in json.loads(daemon_json.read_text()).get("dns", [])]
    if not servers:
        with contextlib.suppress(OSError, ValueError):
            servers = _nameservers(resolv_conf.read_text())
            if all(ipaddress.ip_address(s).is_loopback for s in servers):
                servers = _nameservers(systemd_resolv_conf.read_text())
    found = []
    for server in servers:
        try:
            address = ipaddress.ip_address(server)
        except ValueError:
            continue
        if address.version == 4 and not address.is_loopback:
            found.append(str(address))
    return tuple(dict.fromkeys(found))
