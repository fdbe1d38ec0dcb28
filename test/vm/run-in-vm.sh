#!/usr/bin/env bash
# test/vm/run-in-vm.sh [options] -- COMMAND [ARGS...]     (or: -i for an interactive shell)
#
# Boots the guest built by test/vm/build-image.sh once, runs COMMAND in it as root (from the project directory, which
# is shared over 9p at the SAME absolute path), streams the output and exits with COMMAND's status.
# Adapted from the shared VM recipe (shared/vm/run-in-vm.sh); scripts/test-vm.sh is the usual entry point.
#
# Every run starts pristine: the root disk is a throw-away qcow2 overlay over the cached root.img, and a blank sparse
# disk is attached as /dev/vdb = /dev/disk/by-id/virtio-imgbased-lvm for the LVM tests.
#
# Options:
#   -c DIR   image cache dir                     [default /var/cache/imgbased-vm]
#   -s DIR   host dir to share                   [default $PWD]
#   -t SEC   overall timeout, boot included      [VM_TIMEOUT, default 3600] -> exit 124
#   -m MEM   guest memory                        [VM_MEM, default 2G]
#   -p N     guest CPUs                          [VM_CPUS, default 2]
#   -d SIZE  size of the blank LVM disk          [VM_DISK_SIZE, default 20G, sparse]
#   -e K=V   export K=V for COMMAND (repeatable)
#   -i       interactive: serial console on this terminal, root autologin, shares mounted, no COMMAND
# Env: VM_ACCEL=auto|kvm|tcg, VM_CONSOLE_LOG (copy the guest console log there), VM_KEEP=1 (keep the work dir),
#      VM_9P_CACHE (loose|none|mmap; loose is fastest, host-side edits during a run may go unseen).
# Exit status: COMMAND's; 124 timeout; 125 VM/infrastructure failure (no result from the guest); 130 interrupted.
set -uo pipefail

CACHE=/var/cache/imgbased-vm
SHARE=$PWD
TIMEOUT=${VM_TIMEOUT:-3600}
MEM=${VM_MEM:-2G}
CPUS=${VM_CPUS:-2}
DISK_SIZE=${VM_DISK_SIZE:-20G}
INTERACTIVE=0
ENVS=()
while getopts "c:s:t:m:p:d:e:ih" o; do
    case $o in
        c) CACHE=$OPTARG ;; s) SHARE=$OPTARG ;; t) TIMEOUT=$OPTARG ;;
        m) MEM=$OPTARG ;;   p) CPUS=$OPTARG ;;  d) DISK_SIZE=$OPTARG ;;
        e) ENVS+=("$OPTARG") ;; i) INTERACTIVE=1 ;;
        *) sed -n '2,25p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || [ "$INTERACTIVE" = 1 ] || { echo "usage: $0 [options] -- COMMAND [ARGS...]  (-h for help)" >&2; exit 2; }

log() { printf '[run-in-vm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { log "ERROR: $*"; exit 125; }

CACHE=$(cd "$CACHE" 2>/dev/null && pwd) || fail "cache dir $CACHE missing (run test/vm/build-image.sh)"
SHARE=$(cd "$SHARE" 2>/dev/null && pwd) || fail "share dir missing"
for f in root.img vmlinuz initrd.img; do
    [ -f "$CACHE/$f" ] || fail "$CACHE/$f missing (run test/vm/build-image.sh)"
done
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 missing (apt-get install qemu-system-x86 qemu-utils)"

# KVM only when backed by kvm_intel/kvm_amd. Some sandboxes expose /dev/kvm through kvm_pvm, under which a stock
# Debian kernel never boots (see shared/vm/NOTES.md): software emulation (TCG) is slower but works everywhere.
ACCEL=${VM_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
    ACCEL=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
        ACCEL=kvm
    fi
fi
if [ "$ACCEL" = kvm ]; then
    CPU=${VM_CPU_MODEL:-host,-arch-capabilities}; ACCEL_OPT=kvm
else
    CPU=${VM_CPU_MODEL:-max}; ACCEL_OPT=tcg,thread=multi,tb-size=512
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgbased-vm.XXXXXX") || fail "mktemp"
mkdir -p "$WORK/ctl"
QPID='' TPID=''
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill -TERM "$QPID" 2>/dev/null; sleep 1; kill -KILL "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null
    fi
    if [ -n "$TPID" ]; then kill "$TPID" 2>/dev/null; wait "$TPID" 2>/dev/null; fi
    if [ -n "${VM_CONSOLE_LOG:-}" ] && [ -f "$WORK/console.log" ]; then cp "$WORK/console.log" "$VM_CONSOLE_LOG"; fi
    if [ "${VM_KEEP:-0}" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# What the in-guest runner (imgbased-vm-runner.service, see build-image.sh) sources and runs.
{
    echo 'set -e'
    printf 'cd %q\n' "$SHARE"
    for kv in "${ENVS[@]+"${ENVS[@]}"}"; do printf 'export %q\n' "$kv"; done
    if [ $# -gt 0 ]; then printf 'exec'; printf ' %q' "$@"; echo; fi
} >"$WORK/ctl/cmd.sh"
{
    printf 'VM_WORKDIR=%q\n' "$SHARE"
    printf 'VM_CMD_TIMEOUT=%q\n' "$TIMEOUT"
    printf 'VM_9P_CACHE=%q\n' "${VM_9P_CACHE:-loose}"
} >"$WORK/ctl/env"

qemu-img create -q -f qcow2 -F raw -b "$CACHE/root.img" "$WORK/root.qcow2" || fail "qemu-img overlay"
truncate -s "$DISK_SIZE" "$WORK/lvm.img" || fail "blank disk"

APPEND="root=/dev/vda rw fsck.mode=skip console=ttyS0,115200 panic=-1"
if [ "$INTERACTIVE" = 1 ]; then
    APPEND="$APPEND imgbased.vm=shell"
    SERIAL=(-serial mon:stdio)
else
    # no login prompt on the console while tests run
    APPEND="$APPEND quiet loglevel=4 imgbased.vm=run systemd.mask=serial-getty@ttyS0.service"
    SERIAL=(-serial "file:$WORK/console.log")
fi
# qemu dies with this script even on SIGKILL
PDEATH=()
if setpriv --help 2>/dev/null | grep -q pdeathsig; then PDEATH=(setpriv --pdeathsig KILL); fi
QEMU=("${PDEATH[@]+"${PDEATH[@]}"}" qemu-system-x86_64
    -machine q35 -accel "$ACCEL_OPT" -cpu "$CPU" -m "$MEM" -smp "$CPUS"
    -nodefaults -no-user-config -display none -no-reboot "${SERIAL[@]}"
    -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img" -append "$APPEND"
    -drive "file=$WORK/root.qcow2,format=qcow2,if=none,id=root,cache=unsafe,discard=unmap"
    -device virtio-blk-pci,drive=root,serial=imgbased-root
    -drive "file=$WORK/lvm.img,format=raw,if=none,id=lvm,cache=unsafe,discard=unmap"
    -device virtio-blk-pci,drive=lvm,serial=imgbased-lvm
    -virtfs "local,path=$WORK/ctl,mount_tag=vmctl,security_model=none,id=vmctl"
    -virtfs "local,path=$SHARE,mount_tag=vmwork,security_model=none,id=vmwork"
    -device virtio-rng-pci -nic none)

if [ "$INTERACTIVE" = 1 ]; then
    log "interactive boot ($ACCEL): project at $SHARE, blank disk /dev/vdb; leave with 'poweroff' (or Ctrl-a x)"
    "${QEMU[@]}"
    exit $?
fi

T0=$EPOCHREALTIME
"${QEMU[@]}" </dev/null >"$WORK/qemu.log" 2>&1 &
QPID=$!
log "qemu pid $QPID ($ACCEL, $CPUS cpu, $MEM), cache $CACHE, timeout ${TIMEOUT}s"
tail -n +1 -F --pid="$QPID" "$WORK/ctl/output.log" 2>/dev/null &
TPID=$!

TIMED_OUT=0
DEADLINE=$((SECONDS + TIMEOUT))
while kill -0 "$QPID" 2>/dev/null; do
    if [ $SECONDS -ge $DEADLINE ]; then
        TIMED_OUT=1; log "TIMEOUT after ${TIMEOUT}s, stopping qemu"
        kill -TERM "$QPID" 2>/dev/null; sleep 2; kill -KILL "$QPID" 2>/dev/null
        break
    fi
    sleep 0.5
done
wait "$QPID" 2>/dev/null; QRC=$?; QPID=''
wait "$TPID" 2>/dev/null; TPID=''
ELAPSED=$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')

if [ "$TIMED_OUT" = 1 ]; then
    log "--- last console lines ---"; tail -n 40 "$WORK/console.log" >&2; exit 124
fi
if [ ! -f "$WORK/ctl/rc" ]; then
    log "no result from the guest (qemu exit $QRC) --- qemu.log:"; cat "$WORK/qemu.log" >&2
    log "--- last console lines ---"; tail -n 60 "$WORK/console.log" >&2
    exit 125
fi
RC=$(cat "$WORK/ctl/rc")
log "guest command exit status $RC, VM wall time ${ELAPSED}s"
exit "$RC"
