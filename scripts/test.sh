#!/usr/bin/env bash
# The whole test suite: installs what it needs, lints, then runs pytest.
# Test artifacts (screenshots, receipts, logs) land in artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export ESCPOS_CAPABILITIES_PICKLE_DIR="$PWD/.venv/escpos-cache"
mkdir -p artifacts "$ESCPOS_CAPABILITIES_PICKLE_DIR"
.venv/bin/ruff check pos hardware firmware_config sync tests bench
.venv/bin/python -m pytest "$@"
