#!/usr/bin/env bash
# make arm64-check: proof on the Pi's architecture, under qemu-user-static. Builds the arm64 packages and
# the offline bundle, makes a fresh Debian 12 arm64 root (scripts/arm64-root.sh), installs from the bundle
# with networking cut off, then runs the CLI, provisioning, `ewarung doctor`, a headless redemption (the
# scripted demo on the in-process card deck) and checks that the SDL2 inside the Kivy wheel offers the
# kmsdrm video driver the counter unit asks for. Prints each step's time; report in build/arm64-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
out=build/arm64-check
root=$out/root
mkdir -p "$out"
report=$out/report.txt
: > "$report"
t0=$(date +%s)
last=$t0
step() {
  local now
  now=$(date +%s)
  printf '%-58s %4ss (total %ss)\n' "$1" $((now - last)) $((now - t0)) | tee -a "$report"
  last=$now
}
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LC_ALL=C.UTF-8 EWARUNG_DEMO_DECK=fake KIVY_NO_ARGS=1 KIVY_HOME=/tmp/kivy /bin/sh -ec "$1"; }

if [[ ! -f dist/deb/arm64/ewarung-pos_${VERSION}_arm64.deb || ${EWARUNG_REBUILD:-} ]]; then
  ./scripts/deb-build.sh arm64 >/dev/null
fi
step "arm64 packages (dpkg-buildpackage -a arm64)"
./scripts/deb-bundle.sh arm64 | tee -a "$report"
bundle=dist/ewarung-pos-bundle_${VERSION}_arm64.run
step "offline bundle"
./scripts/arm64-root.sh test "$root"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
step "fresh Debian 12 arm64 root (minbase + python3)"
cp "$bundle" "$root/tmp/"
unshare --net chroot "$root" /bin/sh /tmp/"$(basename "$bundle")" > "$out/install.log" 2>&1 || { tail -30 "$out/install.log"; exit 1; }
tail -n 1 "$out/install.log" | tee -a "$report"
step "install from the bundle, network cut off (unshare --net)"
in_root 'uname -m; ewarung --version; ewarung --help >/dev/null' | tee -a "$report"
step "ewarung CLI runs"
in_root '/opt/ewarung/venv/bin/python3 - <<PY
import ctypes, glob
lib = ctypes.CDLL(glob.glob("/opt/ewarung/venv/lib/python3.11/site-packages/Kivy.libs/libSDL2-2*.so*")[0])
lib.SDL_GetVideoDriver.restype = ctypes.c_char_p
drivers = [lib.SDL_GetVideoDriver(i).decode() for i in range(lib.SDL_GetNumVideoDrivers())]
print("SDL2 video drivers:", " ".join(drivers))
assert "kmsdrm" in [d.lower() for d in drivers], "the bundled SDL2 has no kmsdrm driver"  # SDL matches names case-blind
PY' | tee -a "$report"
step "bundled SDL2 offers kmsdrm"
in_root 'ewarung demo --scripted --data-dir /tmp/demo' > "$out/redemption.log"
grep -iE "receipt|redemption|sisa|remaining" "$out/redemption.log" | head -n 5 | tee -a "$report"
step "headless redemption (scripted demo, in-process card deck)"
# A chroot has no udev daemon and no systemd as PID 1: provisioning's `udevadm control --reload` and
# `systemctl daemon-reload` are no-ops here (shims in /usr/local/sbin, first on the PATH).
in_root 'ln -sf /bin/true /usr/local/sbin/udevadm && ln -sf /bin/true /usr/local/sbin/systemctl
  ewarung demo-data --out /tmp/city --households 50 >/dev/null
  ewarung provision --non-interactive --no-receipt --device-id EW-ARM-0001 --shop-id SMD-ARM-01 \
    --shop-name "E-Warung arm64" --issuer-key /tmp/city/keys/issuer.pub.pem --ledger-key /tmp/city/keys/ledger.pub.pem \
    --central-key /tmp/city/keys/central.pub.pem --broker-host localhost --printer-kind dummy
  echo 1234 | EWARUNG_CONFIG=/etc/ewarung/ewarung.toml ewarung cashier add kasir1 --name "Siti Aminah" --pin-stdin' > "$out/provision.log"
grep '^provision:' "$out/provision.log" | tee -a "$report"
step "ewarung provision, a cashier (creates the database)"
set +e
in_root 'ewarung doctor --no-receipt --timeout 1' > "$out/doctor.log" 2>&1
set -e
grep -E '^\[( ok |warn|FAIL)\]' "$out/doctor.log" | tee -a "$report"
# no reader, no pcscd and no broker in a chroot: those two may fail, nothing else
if grep '^\[FAIL\]' "$out/doctor.log" | grep -vE '^\[FAIL\] (reader|broker) '; then
  echo "arm64-check: ewarung doctor failed a check a chroot can pass" >&2
  exit 1
fi
step "ewarung doctor (all but reader and broker ok)"
echo "arm64-check: passed in $(( $(date +%s) - t0 )) s" | tee -a "$report"
