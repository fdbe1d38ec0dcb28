#!/usr/bin/env bash
# Runs in the guest (scripts/test-vm.sh run -- test/vm/probe-timing.sh): where does VM-tier time go?
# Times single lvm2 commands from a shell and from node (fork of a big process), and udev settling.
set -euo pipefail
DISK=${IMGBASED_VM_DISK:-/dev/disk/by-id/virtio-imgbased-lvm}
t() { local s=$EPOCHREALTIME; "$@" >/dev/null 2>&1; printf '%8.2fs  %s\n' "$(echo "$EPOCHREALTIME - $s" | bc 2>/dev/null || awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')" "$*"; }
udevadm settle
t pvcreate -qy "$DISK"
t vgcreate -q probe "$DISK"
t lvcreate -qy --type thin-pool -L 2G -n pool probe
t lvcreate -qy --thin --virtualsize 512M -n a probe/pool
t lvs probe
t lvs --reportformat json --units b --nosuffix probe
t udevadm settle
t mkfs.ext4 -q -F -E discard /dev/probe/a
t lvcreate -qy --snapshot --name b probe/a
t lvchange -ay -K probe/b
t udevadm settle
t e2fsck -f -y /dev/probe/b
t tune2fs -U random /dev/probe/b
t lvchange -an probe/b
t lvchange --permission r probe/a
t blkid -p -s UUID -o value /dev/probe/a
t node -e 0
t node -e 'require("child_process").execFileSync("lvs",["probe"])'
t node -e 'const a=new Array(3e7).fill(1); const cp=require("child_process"); const s=Date.now(); for(let i=0;i<5;i++) cp.execFileSync("true"); console.error("5 spawns from a 250MB node:", (Date.now()-s)/1000, "s")'
node -e 'const a=new Array(3e7).fill(1); const cp=require("child_process"); const s=Date.now(); for(let i=0;i<5;i++) cp.execFileSync("true"); console.log("  5 spawns from a 250MB node:", (Date.now()-s)/1000, "s")'
t node -e 'require("./node_modules/jest/package.json")'
s=$EPOCHREALTIME; node node_modules/jest/bin/jest.js --version >/dev/null; echo "  jest --version: $(awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')s"
vgremove -qff probe >/dev/null; pvremove -qff "$DISK" >/dev/null
