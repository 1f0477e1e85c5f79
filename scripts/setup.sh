#!/usr/bin/env bash
# Set up a Debian/Ubuntu host for Berth: Docker engine (started if none answers), mmdebstrap for
# registry-less builds, a virtualenv with Berth, and `berth` on PATH. Idempotent: a second run
# installs nothing. `--test` also installs what the test suite drives: Chromium, Node's CHP, and
# the linter of the shell scripts (shellcheck).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${BERTH_VENV:-$repo/.venv}
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v pkill >/dev/null || missing+=(procps)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "$want_test" = 1 ]; then
  command -v chromium >/dev/null || missing+=(chromium)
  command -v npm >/dev/null || missing+=(nodejs npm)
  # Let's Encrypt's test ACME server, for the tls.acme tests (tests/integration/test_acme*.py).
  command -v pebble >/dev/null || missing+=(pebble)
  # certutil: the browser test trusts Pebble's root in a temporary NSS database.
  command -v certutil >/dev/null || missing+=(libnss3-tools)
  command -v shellcheck >/dev/null || missing+=(shellcheck)  # lints the start scripts
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# The engine: use the one that answers, else start it (with live-restore; see the script).
bash "$repo/scripts/start-dockerd.sh"

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtualenv $venv"
  python3 -m venv "$venv"
fi
# Berth's distribution was called "berth" before (the name of an unrelated project on PyPI): an
# install under that name would register the same command and entry points twice.
if "$venv/bin/pip" show -q berth >/dev/null 2>&1; then
  log "removing the old 'berth' distribution (now berth-jupyter)"
  "$venv/bin/pip" uninstall -q -y berth
fi
rm -rf "$repo/berth.egg-info"
extras=""
[ "$want_test" = 1 ] && extras="[test]"
# The host's JupyterHub is the release the hub image runs (JUPYTERHUB_HUB_VERSION in
# berth/versions.py), so the CLI and the tests' host hubs run what `berth up` runs; the package
# itself accepts the whole supported range (tests/integration/test_hub_versions.py runs the other
# tested releases in virtualenvs of their own).
hub_release=$(sed -n 's/^JUPYTERHUB_HUB_VERSION = "\(.*\)"$/\1/p' "$repo/berth/versions.py")
[ -n "$hub_release" ] || { echo "setup.sh: no JUPYTERHUB_HUB_VERSION in berth/versions.py" >&2; exit 1; }
uv_release=$(sed -n 's/^UV_VERSION = "\(.*\)"$/\1/p' "$repo/berth/versions.py")
log "installing berth$extras (JupyterHub $hub_release) into $venv"
# uv installs Berth and its dependencies: it downloads in parallel and unpacks several times
# faster than pip (docs/images.md, "The cold path"). pip puts it into the virtualenv first; it
# trusts the system's CA store (UV_NATIVE_TLS), as apt and curl do. Should uv fail, pip does it.
if "$venv/bin/pip" install -q --disable-pip-version-check "uv==${uv_release:-0.13.9}" &&
  UV_NATIVE_TLS=1 "$venv/bin/uv" pip install -q --python "$venv/bin/python" \
    -e "$repo$extras" "jupyterhub==$hub_release"; then
  :
else
  log "uv could not install berth; installing with pip"
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$repo$extras" "jupyterhub==$hub_release"
fi
as_root ln -sf "$venv/bin/berth" /usr/local/bin/berth

if [ "$want_test" = 1 ] && ! command -v configurable-http-proxy >/dev/null; then
  log "installing configurable-http-proxy (npm)"
  as_root npm install -g --silent configurable-http-proxy@5 >/dev/null
fi
if [ "$want_test" = 1 ]; then
  # docker-stacks' own foundation tests (tests/conformance/): their source at the pinned commit.
  # Fetched once from GitHub when no copy is here; the tests themselves download nothing.
  "$venv/bin/python" "$repo/tests/conformance/docker_stacks.py" --fetch \
    || log "warning: no docker-stacks source; set BERTH_DOCKER_STACKS_SRC (docs/images.md)"
fi
log "ready: $(berth version) on Docker $(as_root docker version --format '{{.Server.Version}}')"
