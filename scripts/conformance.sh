#!/usr/bin/env bash
# jupyter/docker-stacks' own foundation tests, unmodified, against Berth's foundation image:
#
#   scripts/conformance.sh [--image berth/foundation:latest] [--src DOCKER_STACKS_GIT_DIR]
#
# The docker-stacks source is a git repository (clone or mirror) holding the commit pinned in
# tests/conformance/docker_stacks.py: --src, else $BERTH_DOCKER_STACKS_SRC, else the local mirror.
# The normal test suite runs the same through tests/integration/test_image_docker_stacks.py.
# Needs the `test` extra (scripts/setup.sh --test); docs/images.md lists what is deselected, why.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${BERTH_VENV:-$repo/.venv}
exec "$venv/bin/python" "$repo/tests/conformance/docker_stacks.py" "$@"
