#!/usr/bin/env bash
# Delta bases vs full base writes on real dm-thin (issue 10): bench/delta.ts, one command, as root.
#
#   scripts/bench-vm.sh [BENCH ARGS...]     e.g. --quick (2000 files, a smoke run), --files N, --rounds N, --seed N
#
# 1. compiles, and builds the signed test images ON THE HOST (test-image-builder: 25x faster than under TCG), into
#    test-artifacts/bench/images-<files>-<seed>[-quick]/; a set made with the same options is reused;
# 2. boots the guest through scripts/test-vm.sh (`run --`), which shares this repo at the same path: the bench copies
#    the images to the guest's blank disk, sets up the oVirt-like host there (it wipes that disk, never anything on the
#    host) and measures. Results land in test-artifacts/bench/ (git-ignored): delta-<UTC time>.json (raw numbers)
#    and .md (the table, also printed).
# Env: VM_TIMEOUT (default 5400 s; the default 20k-file run takes about 30-40 min of guest time under TCG), VM_MEM
# (default 4G), plus everything scripts/test-vm.sh and test/vm/run-in-vm.sh read.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench-vm.sh: run as root (see scripts/test-vm.sh)" >&2; exit 2; }
OUT_DIR=$PWD/test-artifacts/bench
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/delta-$(date -u +%Y%m%dT%H%M%SZ).json

# The image set's directory follows the options that shape the images (the bench checks them again).
opt() { local name=$1 v=$2 prev=''; shift 2; for a in "$@"; do [ "$prev" = "--$name" ] && v=$a; prev=$a; done; echo "$v"; }
QUICK=''; for a in "$@"; do [ "$a" = --quick ] && QUICK=-quick; done
FILES=$(opt files "$([ -n "$QUICK" ] && echo 2000 || echo 20000)" "$@")
SEED=$(opt seed 20261126 "$@")
IMAGES=$OUT_DIR/images-$FILES-$SEED$QUICK

npx tsc -p tsconfig.build.json
node dist/bench/delta.js --build-only --images "$IMAGES" "$@"

export VM_TIMEOUT=${VM_TIMEOUT:-5400} VM_MEM=${VM_MEM:-4G}
rc=0
scripts/test-vm.sh run -- node dist/bench/delta.js --images "$IMAGES" --out "$OUT" "$@" || rc=$?
if [ -f "${OUT%.json}.md" ]; then
    echo "bench-vm: table ${OUT%.json}.md, raw numbers $OUT" >&2
elif [ -f "$OUT" ]; then
    echo "bench-vm: no table (the bench stopped early, status $rc); partial raw numbers in $OUT" >&2
fi
exit "$rc"
