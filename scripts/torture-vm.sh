#!/usr/bin/env bash
# Power-cut torture test (issue 11): upgrades, rollbacks and cleanups through the daemon under real systemd in the
# qemu guest, the power cut at a random moment (guest sysrq-b without sync, or QMP system_reset from the host), the
# guest booted again on the same disks, the daemon's recovery judged OLD / NEW / BROKEN. A campaign runs for hours
# under TCG (2-2.5 min per run on a quiet 2-CPU host); the default test run (scripts/test.sh) runs only --short.
# See docs/DURABILITY.md.
#
#   scripts/torture-vm.sh [--runs N | --short] [--fs ext4|xfs] [--seed S] [--dir DIR] [--cpus N] [--clean] [--stall SEC]
#
#   --runs N     runs in the campaign (default 50)
#   --short      CI's campaign: two upgrades, cut at 35 % (sysrq-b) and 65 % (system_reset) of their measured duration
#   --fs         filesystem of the layers, /boot and /var/lib/imgbased (default ext4)
#   --seed S     schedule seed (operations, cut kinds, cut moments); a number or any string (default: from the clock)
#   --dir DIR    campaign directory (default test-artifacts/torture/<fs>-s<seed>-<time>); an existing one is resumed
#                (extended to --runs N when that is given and larger)
#   --clean      delete the disks after a campaign where every run passed (default: kept, so --runs can extend it)
# Output: DIR/results.csv, DIR/summary.txt (also test-artifacts/torture/<label>.csv and .summary.txt), DIR/console.log.
# A BROKEN run stops the campaign and keeps DIR (lvm.img, root.qcow2, console.log, ctl/ with every snapshot).
# Env: IMGBASED_VM_CACHE (image cache, default /var/cache/imgbased-vm), VM_CPUS, VM_MEM, VM_ACCEL, IMGBASED_VM_TSCONFIG.
# Exit: 0 all runs OLD or NEW, every follow-up upgrade succeeded and the daemon started at once after every cut; 1
# otherwise; 2 harness failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "torture-vm.sh: run as root (image build, test images with device nodes)" >&2; exit 2; }
CACHE=${IMGBASED_VM_CACHE:-/var/cache/imgbased-vm}
phase() { printf '[torture-vm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

missing=()
for p in qemu-system-x86 qemu-utils debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    phase "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
test/vm/build-image.sh "$CACHE"
if [ "${TORTURE_SKIP_BUILD:-0}" != 1 ]; then
    T=$SECONDS
    # a fresh clone: npm ci needs apt packages first (libvirt-dev for @unraid/libvirt), so run the whole setup
    [ -d node_modules ] || scripts/setup.sh
    rm -rf dist/test/vm
    npx tsc -p "${IMGBASED_VM_TSCONFIG:-tsconfig.build.json}"
    phase "compiled in $((SECONDS - T))s"
fi
mkdir -p test-artifacts/torture
exec node dist/test/vm/torture/driver.js --cache "$CACHE" "$@"
