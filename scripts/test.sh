#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: sets the host up (scripts/setup.sh --test),
# builds the image stack (cached layers are reused), then lint and type checks, unit, integration
# and browser tests.
# `scripts/test.sh --full` adds the heavy suites (see tests/conftest.py); `--jupyterhub VERSION`
# runs the tests' JupyterHub processes (tests/integration/hub_harness.py) on that release, from
# a virtualenv made once by tests/hub_venvs.py; `--engine podman` runs the tests against Podman's
# Docker-compatible API instead of dockerd (scripts/start-podman.sh, docs/podman.md): by default
# the whole integration suite, the Docker-only modules skipped (tests/engine_support.py); other
# arguments go to pytest.
# Builds trust BERTH_CA_BUNDLE (default: the host's bundle, so TLS-inspecting proxies work).
set -euo pipefail
# --full: also the heavy suites (tests marked `full`: 200 servers, multi-node Swarm, soaks).
hub_version=""
engine=docker
while [ $# -gt 0 ]; do
  case "$1" in
    --full) export BERTH_FULL=1; shift ;;
    --jupyterhub) hub_version=${2:?--jupyterhub needs a version, e.g. 6.1.1}; shift 2 ;;
    --engine) engine=${2:?--engine needs docker or podman}; shift 2 ;;
    *) break ;;
  esac
done
case "$engine" in
  docker | podman) ;;
  *) echo "--engine: docker or podman, not '$engine'" >&2; exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/setup.sh --test
venv=${BERTH_VENV:-$repo/.venv}
export PATH="$venv/bin:$PATH"
export BERTH_CA_BUNDLE=${BERTH_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if [ -n "$hub_version" ]; then
  echo "== JupyterHub $hub_version for the test hubs"
  BERTH_HUB_PYTHON=$(python tests/hub_venvs.py "$hub_version")
  export BERTH_HUB_PYTHON
fi

echo "== lint"
ruff check .
# The package's type hints, checked strictly (settings in pyproject.toml's [tool.mypy]).
mypy

echo "== images"
# The full tier also tests the Spark and TensorFlow images, which a bare build leaves out.
if [ "${BERTH_FULL:-}" = 1 ]; then
  berth images build --all
else
  berth images build
fi

if [ "$engine" = podman ]; then
  echo "== podman"
  podman_socket=/run/berth-podman/podman.sock
  # Stop the service at the end only when this run started it.
  if ! curl -sf --max-time 5 --unix-socket "$podman_socket" http://d/_ping >/dev/null 2>&1; then
    trap 'bash scripts/start-podman.sh --stop' EXIT
  fi
  # Podman's image store is its own: the images the tests start, copied from Docker's (plus
  # those BERTH_PODMAN_IMAGES names: test_doctor.py needs berth/foundation, the PostgreSQL
  # modules berth-ops-postgres:15).
  podman_images="berth/base-notebook:latest berth/hub:latest"
  if [ $# -eq 0 ]; then
    # The whole integration suite: every image it starts, i.e. the stack just built (the
    # image modules skip an image that is missing), the OS base test_up_start_together.py
    # runs, and the PostgreSQL modules' server when Docker has it (else they build it).
    podman_images+=" berth/foundation:latest berth/minimal-notebook:latest"
    podman_images+=" berth/scipy-notebook:latest berth/r-notebook:latest"
    podman_images+=" berth/datascience-notebook:latest berth/registry:latest berth/os-base:bookworm"
    if [ "${BERTH_FULL:-}" = 1 ]; then
      podman_images+=" berth/pyspark-notebook:latest berth/all-spark-notebook:latest"
      podman_images+=" berth/tensorflow-notebook:latest"
    fi
    if docker image inspect berth-ops-postgres:15 >/dev/null 2>&1; then
      podman_images+=" berth-ops-postgres:15"
    fi
  fi
  BERTH_PODMAN_IMAGES="$podman_images ${BERTH_PODMAN_IMAGES:-}" bash scripts/start-podman.sh --load
  export DOCKER_HOST=unix://$podman_socket BERTH_TEST_ENGINE=podman
  # The whole integration suite and the browser tests (long: not CI's, which runs a few
  # modules, .ci/run); the modules that need what only Docker has are skipped with the reason
  # (tests/engine_support.py).
  [ $# -gt 0 ] || set -- tests/integration tests/e2e
fi

echo "== tests"
set +e
# Fast, pure tests first; then the real engine; then the browser.
[ $# -gt 0 ] || set -- tests/unit tests/integration tests/e2e
# The slowest tests are listed so that a run that grows toward CI's time limit shows where.
python -m pytest -p no:cacheprovider -ra --durations=25 "$@"
status=$?
set -e
# pytest's 5 means "no tests collected": a suite that ran nothing must not pass.
exit $status
