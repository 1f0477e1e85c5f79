#!/usr/bin/env bash
# Make sure a Docker engine answers, with live-restore on, so the hub and the user servers keep
# running while dockerd itself restarts (an upgrade, a crash).
#   start-dockerd.sh            start dockerd if no engine answers
#   start-dockerd.sh --restart  stop and start it again (used by a test of exactly that)
# When /etc/docker/daemon.json does not exist yet it is written with live-restore and without the
# userland proxy: published ports on loopback then go through the kernel's NAT, which survives a
# dockerd restart (the userland proxy restarts with dockerd and refuses connections meanwhile).
# An existing file is the operator's and is left alone. (BERTH_DAEMON_JSON names another file:
# for the tests of this script.)
set -euo pipefail

log() { printf '\033[1m[dockerd]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
answers() { as_root docker info >/dev/null 2>&1; }
systemd() { [ -d /run/systemd/system ]; }
daemon_json=${BERTH_DAEMON_JSON:-/etc/docker/daemon.json}

if [ ! -e "$daemon_json" ]; then
  log "writing $daemon_json with live-restore, without the userland proxy"
  as_root mkdir -p "$(dirname "$daemon_json")"
  echo '{ "live-restore": true, "userland-proxy": false }' |
    as_root tee "$daemon_json" >/dev/null
  # live-restore is one of the settings a running engine reloads on SIGHUP; the userland proxy
  # setting is read at start, so a running engine drops its proxy at its next restart.
  if answers; then
    if systemd; then as_root systemctl reload docker; else as_root pkill -HUP -x dockerd; fi
  fi
fi

if [ "${1:-}" = "--restart" ] && answers; then
  log "restarting dockerd"
  if systemd; then
    as_root systemctl restart docker
  else
    as_root pkill -TERM -x dockerd
    for _ in $(seq 1 60); do pgrep -x dockerd >/dev/null || break; sleep 0.5; done
  fi
fi

if ! answers; then
  if systemd; then
    log "starting docker.service"
    as_root systemctl start docker
  else
    log "starting dockerd (log: /var/log/berth-dockerd.log)"
    as_root bash -c 'setsid nohup dockerd >>/var/log/berth-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do answers && break; sleep 1; done
  answers || { log "dockerd did not come up; see its log"; exit 1; }
fi
