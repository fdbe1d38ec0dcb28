#!/usr/bin/env bash
# The VM test tier (issue 3): real dm-thin LVM, systemd and a system bus, inside a Debian 12 guest under qemu.
# The host kernel has no device-mapper, so everything that needs real LVM runs here.
#
#   scripts/test-vm.sh [JEST ARGS...]   run the whole VM suite (dist/test/vm/**/*.test.js) in ONE guest boot
#   scripts/test-vm.sh shell            interactive guest shell (root, project mounted at the same path, blank /dev/vdb)
#   scripts/test-vm.sh run -- CMD...    run any command in the guest (from the repo root), e.g. for debugging
#
# Steps: (a) install qemu + debootstrap when missing, (b) build the guest image once and cache it OUTSIDE the repo,
# (c) compile the TypeScript on the host (the guest runs compiled JS only: tsc/ts-jest under software emulation are
# 25-35x slower), (d) boot the guest once and run the suite inside as root, (e) exit with the suite's status.
# Run as root (debootstrap needs it). Env:
#   IMGBASED_VM_CACHE   image cache dir (default /var/cache/imgbased-vm); ~700 MB
#   VM_TIMEOUT          overall guest timeout in seconds (default 3600: the default VM suite takes 25-35 min under TCG)
#   IMGBASED_VM_TSCONFIG  tsconfig to compile with (default tsconfig.build.json, the whole tree; test/vm/tsconfig.json
#                       compiles only the VM suite and its imports)
#   VM_ACCEL, VM_MEM, VM_CPUS, VM_DISK_SIZE, VM_CONSOLE_LOG, VM_KEEP   see test/vm/run-in-vm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${IMGBASED_VM_CACHE:-/var/cache/imgbased-vm}
T_START=$SECONDS
phase() { printf '[test-vm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { echo "test-vm.sh: run as root (apt-get, debootstrap)" >&2; exit 2; }

MODE=suite
case "${1:-}" in
    shell) MODE=shell; shift ;;
    run) MODE=run; shift; [ "${1:-}" = "--" ] && shift; [ $# -gt 0 ] || { echo "usage: $0 run -- CMD..." >&2; exit 2; } ;;
esac

# (a) host packages for the VM tier
T=$SECONDS
missing=()
for p in qemu-system-x86 qemu-utils debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    phase "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    phase "host packages installed in $((SECONDS - T))s"
fi

# (b) the guest image (a no-op when the cache key matches)
T=$SECONDS
test/vm/build-image.sh "$CACHE"
phase "image ready in $((SECONDS - T))s"

# (c) compile on the host; stale compiled VM tests of deleted sources must not run
T=$SECONDS
# a fresh clone: npm ci needs apt packages first (libvirt-dev for @unraid/libvirt), so run the whole setup
if [ ! -d node_modules ]; then scripts/setup.sh; fi
rm -rf dist/test/vm
npx tsc -p "${IMGBASED_VM_TSCONFIG:-tsconfig.build.json}"
phase "compiled in $((SECONDS - T))s"

# (d) one boot, everything inside
RUN=(test/vm/run-in-vm.sh -c "$CACHE" -s "$REPO")
T=$SECONDS
rc=0
case $MODE in
    shell) "${RUN[@]}" -i || rc=$? ;;
    run)   "${RUN[@]}" -- "$@" || rc=$? ;;
    suite) "${RUN[@]}" -- test/vm/guest-run.sh "$@" || rc=$? ;;
esac
phase "guest finished in $((SECONDS - T))s with status $rc; total $((SECONDS - T_START))s"
# (e)
exit "$rc"
