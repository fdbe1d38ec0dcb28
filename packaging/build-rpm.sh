#!/usr/bin/env bash
# packaging/build-rpm.sh — build the imgbased RPMs from the working tree, offline (docs/PACKAGING.md).
#
#   packaging/build-rpm.sh [--topdir DIR] [--outdir DIR] [--keep]
#
#   --topdir DIR   rpmbuild's _topdir (default: a fresh temp dir, removed afterwards unless --keep)
#   --outdir DIR   where the .rpm files are copied (default: artifacts/rpm in the repo)
#   --manifest F   write the list of paths the install target (make install) put into the buildroot to F
#
# Steps:
#   1. Source1 = node_modules vendored from package-lock.json (`npm ci --ignore-scripts` in a temp dir: package
#      sources only, no binaries, nothing run). Cached by the lockfile's sha256 under $IMGBASED_RPM_CACHE
#      (default /var/cache/imgbased-rpm), so only the first build needs the npm registry.
#   2. Source0 = the working tree's files (git: tracked + untracked, not ignored; no dist/, no node_modules/).
#   3. rpmbuild -bb with no network use: %build compiles the native addons from source (npm rebuild,
#      npm_config_build_from_source=true), the TypeScript, the Cockpit page and the SELinux module.
# On a host whose rpm database does not know the build dependencies (Debian), rpmbuild runs with --nodeps; the
# Debian packages the build needs are in scripts/apt-packages.txt.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SPEC=$REPO/packaging/imgbased.spec

TOPDIR=
OUTDIR=$REPO/artifacts/rpm
KEEP=0
MANIFEST=
while [ $# -gt 0 ]; do
    case $1 in
        --topdir) TOPDIR=$2; shift 2 ;;
        --outdir) OUTDIR=$2; shift 2 ;;
        --manifest) MANIFEST=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "build-rpm.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

die() { echo "build-rpm.sh: $*" >&2; exit 1; }
for tool in rpmbuild npm node git tar; do command -v "$tool" >/dev/null || die "$tool is needed"; done

NAME=$(rpmspec -q --srpm --qf '%{name}' "$SPEC" 2>/dev/null || echo imgbased)
VERSION=$(node -p 'require(process.argv[1]).version' "$REPO/package.json")
SPEC_VERSION=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
[ "$VERSION" = "$SPEC_VERSION" ] || die "package.json version $VERSION differs from the spec's Version: $SPEC_VERSION"

CLEAN_TOPDIR=0
if [ -z "$TOPDIR" ]; then
    TOPDIR=$(mktemp -d "${TMPDIR:-/tmp}/imgbased-rpm.XXXXXX")
    [ "$KEEP" = 1 ] || CLEAN_TOPDIR=1
fi
cleanup() { if [ "$CLEAN_TOPDIR" = 1 ]; then rm -rf "$TOPDIR"; fi; }
trap cleanup EXIT
mkdir -p "$TOPDIR"/{SOURCES,BUILD,RPMS,SRPMS,SPECS,BUILDROOT} "$OUTDIR"
TOPDIR=$(cd "$TOPDIR" && pwd)

# --- 1. Source1: vendored node_modules (cached by lockfile hash) -----------------------------------------------
CACHE=${IMGBASED_RPM_CACHE:-/var/cache/imgbased-rpm}
LOCKSUM=$(sha256sum "$REPO/package-lock.json" | cut -c1-16)
VENDOR=$CACHE/node_modules-$LOCKSUM.tar
if [ ! -s "$VENDOR" ]; then
    echo "build-rpm.sh: vendoring node_modules (npm ci --ignore-scripts) into $VENDOR"
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/imgbased-vendor.XXXXXX")
    cp "$REPO/package.json" "$REPO/package-lock.json" "$tmp/"
    (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
    tar -C "$tmp" -cf "$VENDOR.part" node_modules
    mv "$VENDOR.part" "$VENDOR"
    rm -rf "$tmp"
fi
ln -sf "$VENDOR" "$TOPDIR/SOURCES/$NAME-$VERSION-node_modules.tar"

# --- 2. Source0: the working tree -------------------------------------------------------------------------------
stage=$TOPDIR/stage/$NAME-$VERSION
mkdir -p "$stage"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$REPO" && while IFS= read -r -d '' f; do
        case $f in node_modules/*|dist/*|artifacts/*|selinux/tmp/*|selinux/*.pp) continue ;; esac
        [ -f "$f" ] && printf '%s\0' "$f"
    done) |
    (cd "$REPO" && xargs -0 cp --parents -t "$stage")
tar -C "$TOPDIR/stage" -czf "$TOPDIR/SOURCES/$NAME-$VERSION.tar.gz" "$NAME-$VERSION"
rm -rf "$TOPDIR/stage"

# --- 3. rpmbuild --------------------------------------------------------------------------------------------------
nodeps=()
manifest=()
if [ -n "$MANIFEST" ]; then
    mkdir -p "$(dirname "$MANIFEST")"
    manifest=(--define "install_manifest $(cd "$(dirname "$MANIFEST")" && pwd)/$(basename "$MANIFEST")")
fi
rpm -q rpm >/dev/null 2>&1 || nodeps=(--nodeps)   # no rpm database of the build host's packages (Debian)
start=$(date +%s)
rpmbuild -bb "${nodeps[@]}" "${manifest[@]}" \
    --define "_topdir $TOPDIR" \
    --define "_sourcedir $TOPDIR/SOURCES" \
    "$SPEC"
echo "build-rpm.sh: rpmbuild took $(( $(date +%s) - start )) s"

find "$TOPDIR/RPMS" -name '*.rpm' -exec cp -t "$OUTDIR" {} +
find "$TOPDIR/RPMS" -name '*.rpm' -printf "$OUTDIR/%f\n" | sort
