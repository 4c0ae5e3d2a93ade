#!/usr/bin/env bash
# Runs the appliance in demo mode: sample city data, virtual printer, and the field tester's card
# deck inserted through the real pcscd + vsmartcard vpcd reader (pcscd is reused if it runs, else
# started for the demo and stopped with it). If pcscd/vpcd cannot be used, the demo falls back to
# the in-process deck and says why on screen. EWARUNG_DEMO_DECK=fake forces the in-process deck.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export ESCPOS_CAPABILITIES_PICKLE_DIR="$PWD/.venv/escpos-cache"
export EWARUNG_DEMO_DECK="${EWARUNG_DEMO_DECK:-auto}"
mkdir -p "$ESCPOS_CAPABILITIES_PICKLE_DIR"
exec .venv/bin/ewarung demo "$@"
