#!/usr/bin/env bash
# Installs everything E-Warung POS needs on Debian 12, as root; safe to run again.
# Debian packages (PC/SC stack, virtual reader, broker, virtual display, tools), a virtualenv
# in .venv, and the project itself (editable) with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev gcc make swig libpcsclite-dev
  pcscd pcsc-tools vsmartcard-vpcd
  mosquitto mosquitto-clients
  xvfb xauth xdotool libgl1 libgl1-mesa-dri libmtdev1 libegl1
  sqlite3 systemd udev postgresql chromium
  libfuse2
  fonts-dejavu-core
  debhelper lintian reprepro gnupg
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "bootstrap: run this command as root (or with sudo) so it can install them." >&2
    exit 1
  fi
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating virtualenv .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.ewarung-installed
if [[ ! -f $stamp || setup.py -nt $stamp ]]; then
  echo "bootstrap: installing the project and its Python dependencies"
  .venv/bin/pip install -q --upgrade pip wheel setuptools
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
