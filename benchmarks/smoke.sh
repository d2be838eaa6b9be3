#!/usr/bin/env bash
# asv smoke test: every benchmark of the default set runs once in the current environment.
# Exits non-zero when any benchmark fails. Saves no results (--quick in an existing environment
# saves only with --set-commit-hash). Extra arguments go to `asv run` (e.g. --bench REGEX).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
"$PYTHON" -m asv machine --yes
exec "$PYTHON" -m asv run --python=same --quick --show-stderr "$@"
