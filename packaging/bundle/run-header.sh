#!/bin/sh
# E-Warung POS offline installer (one file for the USB stick). Install: sudo sh THIS-FILE
# The packages follow the __PAYLOAD__ line as a tar archive; `sh THIS-FILE --extract DIR` only unpacks.
set -eu
line=$(awk '/^__PAYLOAD__$/ { print NR + 1; exit }' "$0")
if [ "${1:-}" = --extract ]; then
	mkdir -p "$2" && tail -n +"$line" "$0" | tar -x -C "$2"
	exit 0
fi
tmp=$(mktemp -d /tmp/ewarung-bundle.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
tail -n +"$line" "$0" | tar -x -C "$tmp"
sh "$tmp/install.sh"
exit 0
__PAYLOAD__
