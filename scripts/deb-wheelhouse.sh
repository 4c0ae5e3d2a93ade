#!/usr/bin/env bash
# Collects every wheel /opt/ewarung/venv needs for one Debian architecture into build/deb/wheelhouse-ARCH:
# the project's own wheel, the pinned PyPI wheels for that platform (packaging/constraints.txt), and a
# pyscard wheel built from its source (PyPI publishes none for Linux). amd64: built here with Debian's
# python3; arm64: built inside a Debian 12 arm64 root under qemu (scripts/arm64-root.sh).
# Network: PyPI (and Debian's mirror for the arm64 root). Run again: only what is missing is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-$(dpkg --print-architecture)}
case $ARCH in
  amd64) M=x86_64 ;;
  arm64) M=aarch64 ;;
  *) echo "deb-wheelhouse: unsupported architecture $ARCH (amd64, arm64)" >&2; exit 2 ;;
esac
PY=/usr/bin/python3  # Debian's interpreter: the one the package runs on, not a developer's pyenv
WH=build/deb/wheelhouse-$ARCH
PYSCARD=$(grep -i '^pyscard==' packaging/constraints.txt | cut -d= -f3)
mkdir -p "$WH"
rm -f "$WH"/ewarung_pos-*.whl
# The project's wheel, from a private copy: setuptools' build/ directory is not safe to share
# between two builds running at once (amd64 and arm64).
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
git ls-files -co --exclude-standard -z | grep -zvE '^(packaging/|tests/|bench/|\.venv$)' | xargs -0 cp --parents -t "$tree"
(cd "$tree" && "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$OLDPWD/$WH" . >/dev/null)

if ! ls "$WH"/pyscard-"$PYSCARD"-*.whl >/dev/null 2>&1; then
  if [[ $ARCH == "$(dpkg --print-architecture)" ]]; then
    "$PY" -m pip wheel -q --no-deps --no-binary pyscard -w "$WH" "pyscard==$PYSCARD"
  else
    ./scripts/arm64-root.sh build build/deb/arm64-build
    src=build/deb/sdist
    mkdir -p "$src"
    "$PY" -m pip download -q --no-deps --no-binary pyscard --no-build-isolation -d "$src" "pyscard==$PYSCARD"
    mkdir -p build/deb/arm64-build/tmp/pyscard
    cp "$src"/pyscard-"$PYSCARD".tar.gz build/deb/arm64-build/tmp/pyscard/
    chroot build/deb/arm64-build /usr/bin/python3 -m pip wheel -q --no-deps --no-build-isolation \
      -w /tmp/pyscard /tmp/pyscard/pyscard-"$PYSCARD".tar.gz
    cp build/deb/arm64-build/tmp/pyscard/pyscard-*-linux_aarch64.whl "$WH"/
  fi
fi

# The PyPI wheels: fetched again only when the pins or the project's requirements change.
stamp=$WH/.complete
if [[ ! -f $stamp || packaging/constraints.txt -nt $stamp || setup.py -nt $stamp ]]; then
  platforms=()
  for tag in manylinux2014 manylinux_2_28 manylinux_2_34 linux; do platforms+=(--platform "${tag}_$M"); done
  "$PY" -m pip download -q --only-binary=:all: "${platforms[@]}" --python-version 3.11 --implementation cp \
    --abi cp311 -c packaging/constraints.txt --find-links "$WH" -d "$WH" "$WH"/ewarung_pos-*.whl
  touch "$stamp"
fi
echo "deb-wheelhouse: $(ls "$WH" | wc -l) wheels in $WH"
