#!/usr/bin/env bash
# The city's signed apt repository for the shops' unattended upgrades, kept with reprepro.
#   apt-repo.sh init REPO KEYID        make REPO (conf/, db/; public/ is what the web server serves)
#   apt-repo.sh publish REPO DEB...    add releases; each replaces the older version of its package
#   apt-repo.sh list REPO              what the shops will get
# KEYID is the city's release signing key in the gpg keyring of the user running this (docs/central.md).
# Shipped in ewarung-central as /usr/share/ewarung-central/apt-repo.sh.
set -euo pipefail
cmd=${1:?init, publish or list}
repo=${2:?repository directory}
shift 2
case $cmd in
  init)
    key=${1:?the signing key id (gpg --list-secret-keys)}
    mkdir -p "$repo/conf"
    cat > "$repo/conf/distributions" <<CONF
Origin: E-Warung
Label: E-Warung POS releases
Codename: bookworm
Architectures: amd64 arm64
Components: main
Description: E-Warung POS appliance releases for the city's shops
SignWith: $key
CONF
    printf 'outdir +b/public\ndbdir +b/db\nverbose\n' > "$repo/conf/options"
    reprepro -b "$repo" export
    echo "apt-repo: $repo ready; serve $repo/public over HTTP(S)"
    ;;
  publish)
    (($#)) || { echo "apt-repo: name the .deb files to publish" >&2; exit 2; }
    for deb in "$@"; do reprepro -b "$repo" includedeb bookworm "$deb"; done
    reprepro -b "$repo" list bookworm
    ;;
  list)
    reprepro -b "$repo" list bookworm
    ;;
  *)
    echo "apt-repo: unknown command $cmd (init, publish, list)" >&2
    exit 2
    ;;
esac
