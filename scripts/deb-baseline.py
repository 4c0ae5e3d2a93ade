#!/usr/bin/python3
"""Prints the dpkg status of "a fresh Debian 12" for the offline bundle's dependency resolution.

Why: the bundle must carry every package ewarung-pos needs that a new device lacks, and nothing
the device always has. A fresh Debian 12 always has the packages of priority required, apt, and
what they depend on; the same set exists on every architecture, so this machine's own status,
relabelled to the target architecture, stands in for the device's.
Usage: deb-baseline.py ARCH < /var/lib/dpkg/status > status
"""

import re
import sys


def main() -> None:
    arch, native = sys.argv[1], sys.argv[2]
    stanzas = {}
    for block in sys.stdin.read().split("\n\n"):
        name = re.search(r"^Package: (\S+)", block, re.M)
        if name and re.search(r"^Status: install ok installed$", block, re.M):
            stanzas[name.group(1)] = block
    wanted = [p for p, b in stanzas.items() if re.search(r"^Priority: required$", b, re.M)] + ["apt"]
    seen: set[str] = set()
    while wanted:
        pkg = wanted.pop()
        if pkg in seen or pkg not in stanzas:
            continue
        seen.add(pkg)
        for field in re.findall(r"^(?:Pre-)?Depends: (.*)$", stanzas[pkg], re.M):
            for alternatives in field.split(","):
                wanted += [alt.split()[0].split(":")[0] for alt in alternatives.split("|")]
    for pkg in sorted(seen):
        print(re.sub(rf"^Architecture: {native}$", f"Architecture: {arch}", stanzas[pkg], flags=re.M) + "\n")


if __name__ == "__main__":
    main()
