#!/usr/bin/env bash
# packaging/debian/build-deb.sh — build the imgbased .debs (for the Debian test guest) from the working tree.
#
#   packaging/debian/build-deb.sh [OUTDIR]        (default: artifacts/deb)
#
# Stages the tree (git: tracked + untracked, not ignored) with the host's node_modules (from `npm_config_nodedir=/usr
# npm ci`: native addons built for this Debian release) and packaging/debian as debian/, then runs
# `dpkg-buildpackage -us -uc -b`. debian/rules compiles the TypeScript and the Cockpit page and runs `make install`.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$REPO/artifacts/deb}
[ -d "$REPO/node_modules" ] || { echo "build-deb.sh: no node_modules (run: npm_config_nodedir=/usr npm ci)" >&2; exit 1; }
VERSION=$(node -p 'require(process.argv[1]).version' "$REPO/package.json")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/imgbased-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/imgbased-$VERSION
mkdir -p "$src"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$REPO" && while IFS= read -r -d '' f; do
        case $f in node_modules/*|dist/*|artifacts/*|debian/*|selinux/tmp/*|selinux/*.pp) continue ;; esac
        [ -f "$f" ] && printf '%s\0' "$f"
    done) |
    (cd "$REPO" && xargs -0 cp --parents -t "$src")
cp -a "$REPO/node_modules" "$src/"
cp -a "$REPO/packaging/debian" "$src/debian"
rm -f "$src/debian/build-deb.sh"
start=$(date +%s)
(cd "$src" && dpkg-buildpackage -us -uc -b)
echo "build-deb.sh: dpkg-buildpackage took $(( $(date +%s) - start )) s"
find "$work" -maxdepth 1 -name '*.deb' -exec mv -t "$OUT" {} +
ls -1 "$OUT"/*.deb
