#!/bin/sh
# E-Warung POS offline install: ewarung-pos and every Debian package it needs that this machine lacks,
# from the bundle's own package directory. Needs no network; touches no apt source of the machine.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
arch=$(cat "$here/ARCH")
if [ "$(id -u)" -ne 0 ]; then
	echo "ewarung install: run it as root: sudo sh $0" >&2
	exit 1
fi
if [ "$(dpkg --print-architecture)" != "$arch" ]; then
	echo "ewarung install: this bundle is for $arch, this machine is $(dpkg --print-architecture)" >&2
	exit 1
fi
(cd "$here" && sha256sum --quiet --strict -c SHA256SUMS) || {
	echo "ewarung install: the bundle is damaged (checksums differ); copy it onto the stick again" >&2
	exit 1
}
tmp=$(mktemp -d /tmp/ewarung-apt.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
echo "deb [trusted=yes] file:$here/debs ./" > "$tmp/sources.list"
set -- -q -o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null \
	-o Dir::State::Lists="$tmp/lists" -o Dir::Cache::archives="$tmp/archives" -o APT::Sandbox::User=root
apt-get "$@" update
DEBIAN_FRONTEND=noninteractive apt-get "$@" -y --no-install-recommends install ewarung-pos
# This release is the one to come back to if a later upgrade fails its health check.
updates=/var/lib/ewarung-updates
mkdir -p "$updates/good"
rm -f "$updates"/good/*.deb
cp "$here"/debs/ewarung-runtime_*.deb "$here"/debs/ewarung-pos_*.deb "$updates/good/"
version=$(dpkg-query -W -f='${Version}' ewarung-pos)
printf '%s\n' "$version" > "$updates/good-version"
/opt/ewarung/venv/bin/python3 -m firmware_config.updates record ok "$version" "" "installed from the offline bundle"
echo "ewarung install: $(ewarung --version) installed. Next: sudo ewarung provision (docs/technician.md section 4)"
