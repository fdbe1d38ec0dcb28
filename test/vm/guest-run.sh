#!/usr/bin/env bash
# Runs INSIDE the guest (as root, cwd = the repo, shared from the host over 9p): the whole VM suite with jest on the
# compiled JS (dist/), in band, because the test files share the one blank disk. Extra arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "guest: $(uname -r), node $(node --version), $(lvm version | sed -n 's/^ *LVM version: *//p')"
export IMGBASED_VM_DISK=${IMGBASED_VM_DISK:-/dev/disk/by-id/virtio-imgbased-lvm}
udevadm settle
[ -b "$IMGBASED_VM_DISK" ] || { echo "guest: blank test disk $IMGBASED_VM_DISK missing" >&2; exit 1; }
exec node node_modules/jest/bin/jest.js --config test/vm/jest.vm.config.js --runInBand --ci "$@"
