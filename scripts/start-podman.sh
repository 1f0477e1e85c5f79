#!/usr/bin/env bash
# Podman's Docker-compatible API as a second engine for Berth (see docs/podman.md): a rootful
# `podman system service` on unix:///run/berth-podman/podman.sock, with the settings of
# scripts/podman/containers.conf and scripts/podman/registries.conf. Idempotent, like
# start-dockerd.sh.
#   start-podman.sh           install podman (Debian) if missing, start the service if it does not answer
#   start-podman.sh --load    also copy Berth's notebook images from Docker into Podman's storage
#   start-podman.sh --stop    stop the service this script started
# Then: DOCKER_HOST=unix:///run/berth-podman/podman.sock berth run …  (or scripts/test.sh --engine podman)
# Podman keeps its own images, containers, networks and volumes (/var/lib/containers); Docker's
# are untouched, and so are its iptables chains (netavark adds NETAVARK-* chains of its own).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${BERTH_PODMAN_RUN:-/run/berth-podman}
socket=$run_dir/podman.sock
pidfile=$run_dir/podman.pid
checks_pidfile=$run_dir/healthchecks.pid
logfile=${BERTH_PODMAN_LOG:-/var/log/berth-podman.log}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/scripts/podman/containers.conf}
# The service's registries: 127.0.0.1 over plain HTTP, as Docker (scripts/podman/registries.conf).
registries_conf=${CONTAINERS_REGISTRIES_CONF:-$repo/scripts/podman/registries.conf}

log() { printf '\033[1m[podman]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
answers() { as_root curl -sf --max-time 5 --unix-socket "$socket" http://d/_ping >/dev/null 2>&1; }

# Run "$@" in the background in a session of its own, its pid (after exec) in file $1. It keeps
# no descriptor but 0-2: run under `flock LOCK …` (as scripts/test.sh is, COMMON.md), the service
# inherited the lock's descriptor and handed it to aardvark-dns, which netavark starts and which
# outlives the service, so the lock stayed taken after the run and every other run waited.
daemon() {
  local file=$1
  shift
  # A simple command, not the as_root function: `function &` forks a subshell that waits for
  # its child holding every descriptor of this script's, the lock's too (seen: the lock stayed
  # taken by a `bash scripts/start-podman.sh` under init after the script had ended).
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  # shellcheck disable=SC2016  # expanded by the inner shell
  "${sudo[@]}" setsid bash -c 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -le 2 ] || eval "exec $fd>&-"; done
    echo $$ >"$0" && exec "$@"' "$file" "$@" >>"$logfile" 2>&1 </dev/null &
  for _ in $(seq 1 20); do [ -s "$file" ] && break; sleep 0.1; done
}
alive() { [ -f "$1" ] && as_root kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {  # the process of pid file $1, if it is still running
  if alive "$1"; then
    log "stopping $2 (pid $(cat "$1"))"
    as_root kill -TERM "$(cat "$1")"
    for _ in $(seq 1 30); do alive "$1" || break; sleep 0.5; done
  fi
  as_root rm -f "$1"
}

if [ "${1:-}" = "--stop" ]; then
  stop "$checks_pidfile" "the healthcheck runner"
  stop "$pidfile" "the service"
  as_root rm -f "$socket"
  exit 0
fi

missing=()
command -v podman >/dev/null || missing+=(podman)
# netavark and aardvark-dns are only Recommends of Debian's podman: without them Podman falls
# back to CNI, where containers on a network cannot resolve each other's names.
[ -x /usr/lib/podman/netavark ] || missing+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
fi

# netavark 1.4 sends SIGHUP to the pid in aardvark-dns's pid file and starts a new aardvark-dns
# only when that pid is gone: a file left by an aardvark-dns that died, its pid since taken by
# another process (pid_max is often 32768), would have that process signalled and no container
# name resolved (docs/podman.md). A pid file that names no running aardvark-dns is removed.
aardvark_pidfile=/run/containers/networks/aardvark-dns/aardvark.pid
stale_aardvark_pidfile() {
  local pid
  pid=$(as_root cat "$aardvark_pidfile" 2>/dev/null) || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != aardvark-dns ]
}

if ! answers; then
  log "starting podman system service on $socket (log: $logfile)"
  as_root mkdir -p "$run_dir"
  as_root rm -f "$socket"
  if stale_aardvark_pidfile; then
    log "removing aardvark-dns's stale pid file (pid $(as_root cat "$aardvark_pidfile"))"
    as_root rm -f "$aardvark_pidfile"
  fi
  # --time=0: no idle timeout; the service runs until --stop.
  daemon "$pidfile" env CONTAINERS_CONF="$CONTAINERS_CONF" CONTAINERS_REGISTRIES_CONF="$registries_conf" \
    podman system service --time=0 "unix://$socket"
  for _ in $(seq 1 60); do answers && break; sleep 0.5; done
  answers || { log "podman did not come up; see $logfile"; exit 1; }
  # Podman makes its socket root's alone (0600); Docker's is its group's too (0660, group
  # docker), which is how Berth's engine guard reaches it as an unprivileged user (group_add).
  group=${BERTH_PODMAN_GROUP:-docker}
  if getent group "$group" >/dev/null; then
    as_root chgrp "$group" "$socket"
    as_root chmod 660 "$socket"
  fi
fi

# A podman command run without this containers.conf falls back to CNI (where Debian leaves its
# config), which makes a bridge cni-podman0 on 10.88.0.0/16, the subnet of netavark's default
# network too. The kernel then routes 10.88.0.0/16 to whichever came first: with the CNI bridge
# first and down, nothing reaches a container (published ports time out, a hub never sees its
# servers). A cni-podman0 with no container on it is such a leftover: remove it.
if ip -br link show cni-podman0 2>/dev/null | grep -q DOWN \
  && [ -z "$(ls /sys/class/net/cni-podman0/brif 2>/dev/null)" ]; then
  log "removing the unused CNI bridge cni-podman0 (it shadows netavark's 10.88.0.0/16)"
  as_root ip link delete cni-podman0
fi

# Podman schedules healthchecks with systemd timers; without systemd, nothing would ever run
# them (every container stays "starting"): scripts/podman/healthchecks.py does it instead.
if [ ! -d /run/systemd/system ] && ! alive "$checks_pidfile"; then
  log "starting the healthcheck runner (no systemd here)"
  daemon "$checks_pidfile" python3 "$repo/scripts/podman/healthchecks.py" "$socket"
fi

if [ "${1:-}" = "--load" ]; then
  # Podman's storage is its own: the images Berth's tests start are copied over from Docker
  # (`berth images build` against Podman works too, but rebuilds the whole stack).
  for image in ${BERTH_PODMAN_IMAGES:-berth/base-notebook:latest}; do
    want=$(as_root docker image inspect --format '{{.Id}}' "$image")
    have=$(as_root env CONTAINERS_CONF="$CONTAINERS_CONF" podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    if [ "sha256:$have" != "$want" ] && [ "$have" != "$want" ]; then
      log "copying $image from Docker"
      as_root docker save "$image" | as_root env CONTAINERS_CONF="$CONTAINERS_CONF" podman load -q >/dev/null
    fi
  done
fi
