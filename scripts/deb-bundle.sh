#!/usr/bin/env bash
# The offline bundle for one architecture: ewarung-runtime + ewarung-pos (the wheels are inside
# ewarung-runtime) and every Debian package they need beyond a minimal Debian 12 (packages of
# priority required, apt, and their dependencies), as one self-installing file: dist/ewarung-pos-bundle_VERSION_ARCH.run.
# Needs the packages from scripts/deb-build.sh ARCH; fetches the Debian dependencies from the mirror in
# /etc/apt/sources.list.d/debian.sources with a private apt state (the machine's own apt is untouched).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-$(dpkg --print-architecture)}
VERSION=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
src=$(realpath "${EWARUNG_DEB_DIR:-dist/deb/$ARCH}")
debs=("$src"/ewarung-runtime_"$VERSION"_"$ARCH".deb "$src"/ewarung-pos_"$VERSION"_"$ARCH".deb)
for d in "${debs[@]}"; do
  [[ -f $d ]] || { echo "deb-bundle: $d missing; run scripts/deb-build.sh $ARCH first" >&2; exit 1; }
done

work=$PWD/build/bundle/$ARCH
rm -rf "$work" && mkdir -p "$work"/state "$work"/lists/partial "$work"/cache/archives/partial "$work"/payload/debs
# "Already installed" = what every Debian 12 has (see deb-baseline.py); python3 and the rest go in.
./scripts/deb-baseline.py "$ARCH" "$(dpkg --print-architecture)" < /var/lib/dpkg/status > "$work/state/status"
: > "$work/state/extended_states"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
awk -v arch="$ARCH" -v key="$keyring" '
  /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) suites[n++] = uri " " $i }
  END { for (i = 0; i < n; i++) { split(suites[i], p, " "); printf "deb [arch=%s signed-by=%s] %s %s main\n", arch, key, p[1], p[2] } }
' /etc/apt/sources.list.d/debian.sources > "$work/sources.list"
apt_opts=(-q -o APT::Architecture="$ARCH" -o APT::Architectures="$ARCH" -o Dir::State="$work/state"
  -o Dir::State::status="$work/state/status" -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
  -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null -o Debug::NoLocking=1
  -o APT::Install-Recommends=false -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update >/dev/null
apt-get "${apt_opts[@]}" install --download-only -y "${debs[@]}" >/dev/null
cp "$work"/cache/archives/*.deb "${debs[@]}" "$work/payload/debs/"
(cd "$work/payload/debs" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null > Packages)
cp packaging/bundle/install.sh "$work/payload/install.sh"
echo "$ARCH" > "$work/payload/ARCH"
(cd "$work/payload" && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum > SHA256SUMS)
out=dist/ewarung-pos-bundle_"$VERSION"_"$ARCH".run
mkdir -p dist
{ cat packaging/bundle/run-header.sh; tar -C "$work/payload" -cf - .; } > "$out.part"
mv "$out.part" "$out"
echo "deb-bundle: $out ($(du -h "$out" | cut -f1), $(ls "$work/payload/debs" | grep -c '\.deb$') packages)"
