#!/usr/bin/env bash
# Builds the Debian packages (ewarung-runtime, ewarung-pos, ewarung-central) for one architecture with
# dpkg-buildpackage, from the committed and working-tree files, into dist/deb/ARCH/.
# Usage: scripts/deb-build.sh [amd64|arm64] [DEBIAN-VERSION]   (the version defaults to debian/changelog's)
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-$(dpkg --print-architecture)}
VERSION=${2:-}
./scripts/deb-wheelhouse.sh "$ARCH" 2> >(grep -v "is ignored: it is neither" >&2)
work=build/deb/$ARCH
rm -rf "$work" && mkdir -p "$work/src"
git ls-files -co --exclude-standard -z | grep -zvE '^(packaging/debian/|\.venv$)' | xargs -0 cp --parents -t "$work/src"
cp -r packaging/debian "$work/src/debian"
if [[ -n $VERSION ]]; then
  {
    echo "ewarung ($VERSION) bookworm; urgency=medium"
    echo
    echo "  * Build $VERSION."
    echo
    echo " -- E-Warung POS developers <dev@ewarung.invalid>  $(date -R)"
    echo
    cat packaging/debian/changelog
  } > "$work/src/debian/changelog"
fi
(cd "$work/src" && EWARUNG_WHEELHOUSE="$PWD/../../wheelhouse-$ARCH" \
  dpkg-buildpackage -a "$ARCH" -b -us -uc -d --no-sign >../build.log 2>&1) || { tail -30 "$work/build.log" >&2; exit 1; }
mkdir -p "dist/deb/$ARCH"
cp "$work"/*.deb "dist/deb/$ARCH/"
ls -1 "$work"/*.deb
