#!/usr/bin/env bash
# Set everything up and run the whole default test suite. Run as root from a fresh clone (Debian 12).
#   1. scripts/setup.sh: apt packages, npm ci, strict TypeScript compile (type-checks everything)
#   2. host tier (jest): unit tests, the dir backend, real loop mounts/squashfs/ext4/xfs, OpenPGP, crash matrix
#   3. VM tier (scripts/test-vm.sh): real dm-thin LVM, systemd and a system bus in a qemu guest (35-45 min under TCG;
#      the guest is stopped after 65 min)
#   4. the short power-cut torture (scripts/torture-vm.sh --short, about 13 min): two upgrades under the installed daemon,
#      the guest's power cut mid-way by sysrq-b and by QMP system_reset, each recovered to old-or-new and upgraded again
# Extra arguments go to the host jest run. IMGBASED_TEST_TIERS=host runs the host tier only (for quick local runs;
# CI always runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test.sh: run as root (the tests mount loop devices and squashfs images)" >&2; exit 2; }
scripts/setup.sh
npx jest --ci "$@"
if [ "${IMGBASED_TEST_TIERS:-host,vm}" != host ]; then
  VM_TIMEOUT=${VM_TIMEOUT:-3900} scripts/test-vm.sh
  # test-vm.sh compiled dist/ from this tree; the campaign directory (disks, console log) is deleted when it passes
  TORTURE_SKIP_BUILD=1 scripts/torture-vm.sh --short --fs ext4 --clean --stall 900
fi
