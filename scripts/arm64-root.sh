#!/usr/bin/env bash
# Makes a Debian 12 arm64 root that runs here under qemu-user-static (Debian's qemu-user-static and
# debootstrap; binfmt_misc mounted and the emulator registered by hand, since no service does it here).
#   scripts/arm64-root.sh build DIR   root with a compiler, for building pyscard's arm64 wheel (kept, reused)
#   scripts/arm64-root.sh test DIR    a fresh minimal root (python3 only), as on a new Pi
# The debootstrapped base is cached as a tarball in $EWARUNG_ARM64_CACHE (default /var/cache/ewarung-arm64).
set -euo pipefail
MODE=${1:?build or test}
DIR=${2:?directory}
CACHE=${EWARUNG_ARM64_CACHE:-/var/cache/ewarung-arm64}
missing=()
for p in qemu-user-static debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
  grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$CACHE"
if [[ ! -f $CACHE/base.tar ]]; then
  rm -rf "$CACHE/base.tmp"
  debootstrap --arch=arm64 --variant=minbase --include=python3 bookworm "$CACHE/base.tmp" "$mirror"
  tar -C "$CACHE/base.tmp" -cf "$CACHE/base.tar.part" . && mv "$CACHE/base.tar.part" "$CACHE/base.tar"
  rm -rf "$CACHE/base.tmp"
fi

if [[ $MODE == build && -f $DIR/.ewarung-build-root ]]; then
  exit 0
fi
rm -rf "$DIR" && mkdir -p "$DIR"
tar -C "$DIR" -xf "$CACHE/base.tar"
cp /etc/resolv.conf "$DIR/etc/resolv.conf"
if [[ $MODE == build ]]; then
  mount -t proc proc "$DIR/proc"
  trap 'umount "$DIR/proc"' EXIT
  chroot "$DIR" /bin/sh -ec 'export DEBIAN_FRONTEND=noninteractive; apt-get update -q
    apt-get install -y -q --no-install-recommends gcc python3-dev python3-pip python3-setuptools python3-wheel swig libpcsclite-dev'
  touch "$DIR/.ewarung-build-root"
fi
