#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: sets the host up (scripts/setup.sh --test),
# builds the image stack (cached layers are reused), then lint, unit, integration and browser tests.
# Builds trust BERTH_CA_BUNDLE (default: the host's bundle, so TLS-inspecting proxies work).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/setup.sh --test
venv=${BERTH_VENV:-$repo/.venv}
export PATH="$venv/bin:$PATH"
export BERTH_CA_BUNDLE=${BERTH_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

echo "== lint"
ruff check .

echo "== images"
berth images build

echo "== tests"
set +e
# Fast, pure tests first; then the real engine; then the browser.
[ $# -gt 0 ] || set -- tests/unit tests/integration tests/e2e
python -m pytest -p no:cacheprovider -ra "$@"
status=$?
set -e
# pytest's 5 means "no tests collected": a suite that ran nothing must not pass.
exit $status
