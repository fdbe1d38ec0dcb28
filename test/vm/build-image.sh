#!/usr/bin/env bash
# test/vm/build-image.sh CACHE_DIR
#
# Builds, once, the Debian 12 guest that the VM test tier boots (scripts/test-vm.sh calls it). The host kernel has no
# device-mapper, so everything that needs real dm-thin (the lvm storage backend) or a real systemd/system bus runs in
# this guest under qemu. Adapted from the shared VM recipe (shared/vm/build-image.sh, see shared/vm/NOTES.md for the
# measurements behind each choice).
#
# Output in CACHE_DIR (keep it OUTSIDE the repo; default /var/cache/imgbased-vm):
#   root.img    sparse raw ext4 root filesystem. Each run boots a throw-away qcow2 overlay on top of it.
#   vmlinuz     the guest's own Debian kernel (has dm-thin, 9p, xfs) ...
#   initrd.img  ... and a tiny initramfs (virtio + ext4 only, enough to mount /dev/vda)
#   image.key   hash of every build input; when it matches, the build is a no-op (0 s)
#   debs/       debootstrap's package cache (rebuilds skip the download; dpkg configure still dominates)
#
# Root only (debootstrap, chroot, mkfs.ext4 -d keeping ownership).
# Env: MIRROR (default: the Debian mirror from the host's apt sources), SUITE (bookworm), NODE_BIN (host node copied to
#      /usr/local/bin/node in the guest, default `command -v node`), FORCE=1 (rebuild even when the key matches).
set -euo pipefail

CACHE=${1:?usage: $0 CACHE_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${SUITE:-bookworm}
NODE_BIN=${NODE_BIN:-$(command -v node || true)}
PKG_LIST="$HERE/image-packages.txt"

log() { printf '[build-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
for t in debootstrap mkfs.ext4 chroot sha256sum flock; do
    command -v "$t" >/dev/null || die "missing $t (apt-get install debootstrap e2fsprogs)"
done
[ -n "$NODE_BIN" ] && [ -x "$NODE_BIN" ] || die "no node binary (set NODE_BIN)"

# The mirror the host's apt already uses (deb822 .sources first, then one-line .list files).
if [ -z "${MIRROR:-}" ]; then
    MIRROR=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
                grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'; } \
              | grep -E '/debian/?$' | head -n1 || true)
    [ -n "$MIRROR" ] || die "no Debian mirror found in the apt sources; set MIRROR=URL"
fi

PKGS=$(sed -e 's/#.*//' -e '/^\s*$/d' "$PKG_LIST" | tr -d ' ' | paste -sd, -)
NODE_SUM=$(sha256sum "$NODE_BIN" | cut -d' ' -f1)

# Everything that influences the image goes into the key, this script included.
KEY=$(printf '%s\n' "$SUITE" "$MIRROR" "$PKGS" "$NODE_SUM" \
             "$(sha256sum "$0" | cut -d' ' -f1)" | sha256sum | cut -d' ' -f1)

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
up_to_date() {
    [ "${FORCE:-0}" != 1 ] && [ -f "$CACHE/image.key" ] && [ "$(cat "$CACHE/image.key")" = "$KEY" ] \
        && [ -f "$CACHE/root.img" ] && [ -f "$CACHE/vmlinuz" ] && [ -f "$CACHE/initrd.img" ]
}
if up_to_date; then log "image up to date in $CACHE (key ${KEY:0:12})"; exit 0; fi

# Two test runs may start at once: one builds, the other waits and then finds the image ready.
exec 9>"$CACHE/.lock"
flock -w 3600 9 || die "could not lock $CACHE"
if up_to_date; then log "image up to date in $CACHE (key ${KEY:0:12})"; exit 0; fi

R="$CACHE/rootfs.tmp"
cleanup() {
    for m in dev/pts dev sys proc; do
        if mountpoint -q "$R/$m" 2>/dev/null; then umount -l "$R/$m" || true; fi
    done
}
trap cleanup EXIT

rm -rf "$R" "$CACHE/root.img.tmp" "$CACHE/image.key"
mkdir -p "$CACHE/debs" "$R"

T0=$SECONDS
# minbase + an explicit package list. libpam-systemd must be listed: debootstrap does not resolve polkitd's
# "default-logind | logind" alternative by itself.
log "debootstrap $SUITE ($(echo "$PKGS" | tr ',' '\n' | wc -l) packages requested)"
debootstrap --variant=minbase --merged-usr --cache-dir="$CACHE/debs" \
    --include="$PKGS" "$SUITE" "$R" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (see $CACHE/debootstrap.log)"; }
log "debootstrap done in $((SECONDS - T0))s"

T1=$SECONDS
echo "imgbased-vm" >"$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 imgbased-vm\n' >"$R/etc/hosts"
cat >"$R/etc/fstab" <<'EOF'
/dev/vda  /     ext4   rw,noatime,errors=remount-ro  0 1
tmpfs     /tmp  tmpfs  mode=1777,nosuid,nodev        0 0
EOF
chroot "$R" passwd -d root >/dev/null      # throw-away guest, console only, no network
echo "deb $MIRROR $SUITE main" >"$R/etc/apt/sources.list"
: >"$R/etc/machine-id"                     # empty: systemd makes a transient one at each boot
rm -f "$R/var/lib/dbus/machine-id"

# 9p for the host shares; dm targets for LVM (lvm would autoload them, loading early is cheaper under TCG)
printf '%s\n' 9p 9pnet_virtio dm_mod dm_thin_pool dm_snapshot >"$R/etc/modules-load.d/imgbased-vm.conf"

# Drop kernel modules for hardware a test guest never has (~250 MB of the image).
for kd in "$R"/usr/lib/modules/*/kernel; do
    rm -rf "$kd"/sound "$kd"/drivers/{gpu,media,usb,infiniband,iio,staging,hid,hwmon,platform,comedi,mtd,bluetooth,isdn,net/wireless,net/ethernet,net/can,net/usb,thunderbolt,video,mmc,leds,nfc,atm,fpga} \
           "$kd"/net/{wireless,mac80211,bluetooth,nfc,can}
    chroot "$R" depmod -a "$(basename "$(dirname "$kd")")"
done

# Tiny initramfs: only what mounting /dev/vda (ext4 on virtio-blk) needs.
printf 'MODULES=list\nCOMPRESS=zstd\n' >"$R/etc/initramfs-tools/conf.d/imgbased-vm.conf"
printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >>"$R/etc/initramfs-tools/modules"
mount -t proc proc "$R/proc"; mount -t sysfs sys "$R/sys"
mount --bind /dev "$R/dev"; mount --bind /dev/pts "$R/dev/pts"
chroot "$R" update-initramfs -u -k all >"$CACHE/initramfs.log" 2>&1 \
    || { cat "$CACHE/initramfs.log" >&2; die "update-initramfs failed"; }
cleanup

# Faster, quieter boot: timers and services that are useless in a guest that lives for one test run.
for u in e2scrub_all.timer e2scrub_reap.service fstrim.timer apt-daily.timer apt-daily-upgrade.timer \
         dpkg-db-backup.timer systemd-timesyncd.service getty@tty1.service; do
    chroot "$R" systemctl disable "$u" >/dev/null 2>&1 || true
done
chroot "$R" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
chroot "$R" systemctl set-default multi-user.target >/dev/null 2>&1

# Root autologin on the serial console: only seen in `scripts/test-vm.sh shell`.
mkdir -p "$R/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$R/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF

# The in-guest half of test/vm/run-in-vm.sh. Two 9p shares:
#   vmctl  : a per-run host dir with cmd.sh + env (in) and output.log + rc (out)
#   vmwork : the project tree, mounted at the same absolute path as on the host
# Kernel command line selects the mode:
#   imgbased.vm=run    mount the shares, wait for the boot to finish, run cmd.sh, write rc, power off
#   imgbased.vm=shell  mount the shares and stop (interactive debugging on the serial console)
cat >"$R/usr/local/sbin/imgbased-vm-runner" <<'EOF'
#!/bin/bash
set -u
CTL=/run/imgbased-vm
mode=$(sed -n 's/.*imgbased\.vm=\([a-z]*\).*/\1/p' /proc/cmdline)
mkdir -p "$CTL"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none vmctl "$CTL"; then
    echo "imgbased-vm: cannot mount the ctl share" >/dev/console
    [ "$mode" = run ] && systemctl poweroff --force --force
    exit 1
fi
# shellcheck disable=SC1091
. "$CTL/env"
mkdir -p "$VM_WORKDIR"
mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,cache=${VM_9P_CACHE:-loose}" vmwork "$VM_WORKDIR" \
    || echo "imgbased-vm: cannot mount the project share at $VM_WORKDIR" >/dev/console
[ "$mode" = run ] || exit 0
{
    # Type=simple lets the boot transaction finish while we wait: tests then see "running".
    state=$(timeout 300 systemctl is-system-running --wait 2>&1)
    echo "imgbased-vm: system $state after $(cut -d' ' -f1 /proc/uptime)s; $(systemd-analyze time 2>/dev/null | head -n1)"
    [ "$state" = running ] || systemctl --failed --no-legend --plain
} >"$CTL/output.log" 2>&1
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd "$VM_WORKDIR" || true
timeout --kill-after=10 "${VM_CMD_TIMEOUT:-3600}" bash "$CTL/cmd.sh" >>"$CTL/output.log" 2>&1 </dev/null
rc=$?
echo "$rc" >"$CTL/rc.tmp" && mv "$CTL/rc.tmp" "$CTL/rc"
sync
# the root disk is a throw-away overlay: no orderly shutdown needed
systemctl poweroff --force --force
EOF
chmod 755 "$R/usr/local/sbin/imgbased-vm-runner"
cat >"$R/etc/systemd/system/imgbased-vm-runner.service" <<'EOF'
[Unit]
Description=imgbased VM test tier: run the command handed in by the host
ConditionKernelCommandLine=|imgbased.vm=run
ConditionKernelCommandLine=|imgbased.vm=shell
After=multi-user.target
Wants=multi-user.target

[Service]
Type=simple
ExecStart=/usr/local/sbin/imgbased-vm-runner
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
chroot "$R" systemctl enable imgbased-vm-runner.service >/dev/null 2>&1

# The guest runs the HOST's node (Debian 12 ships Node 18; the project needs >= 20). It links only glibc/libstdc++.
install -m 0755 "$NODE_BIN" "$R/usr/local/bin/node"
log "copied host node $("$NODE_BIN" --version) into the guest"

rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* \
       "$R"/usr/share/man/* "$R"/usr/share/locale/* "$R"/usr/share/info/*

cp "$(readlink -f "$R/vmlinuz")" "$CACHE/vmlinuz"
cp "$(readlink -f "$R/initrd.img")" "$CACHE/initrd.img"
log "configured in $((SECONDS - T1))s"

T2=$SECONDS
USED_MB=$(du -sm -x "$R" | cut -f1)
SIZE_MB=$((USED_MB + 1024))   # sparse: the slack costs nothing on disk, leaves room for test files in the guest
mkfs.ext4 -q -F -L imgbased-vm -d "$R" "$CACHE/root.img.tmp" "${SIZE_MB}M"
mv "$CACHE/root.img.tmp" "$CACHE/root.img"
rm -rf "$R"
echo "$KEY" >"$CACHE/image.key"
log "root.img ${SIZE_MB} MiB apparent, $(du -sm "$CACHE/root.img" | cut -f1) MiB used; mkfs in $((SECONDS - T2))s"
log "total $((SECONDS - T0))s"
