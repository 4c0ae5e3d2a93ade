#!/usr/bin/env bash
# Runs the appliance in demo mode: sample city data, virtual card reader, virtual printer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export ESCPOS_CAPABILITIES_PICKLE_DIR="$PWD/.venv/escpos-cache"
mkdir -p "$ESCPOS_CAPABILITIES_PICKLE_DIR"
exec .venv/bin/ewarung demo "$@"
