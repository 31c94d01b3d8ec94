#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Zero-configuration install.  The runner boots with no driver loaded
# (--driver none) and /lib/modules/$(uname -r) replaced by a tree where
# "make install" put the module into updates/ (tools/install-tree.sh, on
# the host, with the host's depmod), a second tree from "dkms install" in
# /vblk/files/dkms-modules, the host's kmod as /vblk/files/kmod and
# udev's 80-drivers.rules.  Then the adaptive virtio_blk must be what
# loads, with nothing naming its path:
# - at boot, by udev's kmod builtin for the devices' modalias;
# - by busybox "modprobe virtio_blk" (the image's /sbin/modprobe, which
#   the kernel's request_module runs) and by kmod's;
# - from the dkms tree, by udev again (a coldplug "add" trigger).
# Each time the disks come back and data written before reads back.
# Control: with updates/ moved away and kmod's depmod rerun, the same
# modprobe loads the stock module, which the checks tell apart.
#
# The adaptive module is the one with parameters/io_path and the
# out-of-tree taint (O); the stock one is in-tree and has neither.
. ./test_common.sh
. ./vblk_lib.sh

[ "$VBLK_DRIVER" = none ] || fail "needs --driver none: the installed tree is the driver"
mods=/lib/modules/$(uname -r)
[ -x /vblk/files/kmod ] || fail "no /vblk/files/kmod"
[ -d /vblk/files/dkms-modules ] || fail "no /vblk/files/dkms-modules"
bin=/tmp/vblk_install.bin
mkdir -p $bin
for t in modprobe depmod modinfo; do
	ln -sf /vblk/files/kmod $bin/$t
done

ours() {
	[ -e /sys/module/virtio_blk/parameters/io_path ] &&
		case $(cat /sys/module/virtio_blk/taint) in *O*) true ;; *) false ;; esac
}

# installed: the virtio_blk files under $mods, one per line.
installed() {
	(cd $mods && find . -name 'virtio_blk.ko*' | sed 's|^\./||' | sort)
}

# all_disks: as many disks as the guest was given.
all_disks() {
	[ "$(ls -d /sys/block/vd* 2>/dev/null | wc -l)" -ge "$VBLK_NDISKS" ]
}

# wait_disks: all_disks within 20 s, then udev done with them.
wait_disks() {
	vblk_until 20 all_disks || return 1
	command -v udevadm >/dev/null && udevadm settle --timeout=20
	return 0
}

dev=$(vblk_data_disk) || fail "no data disk"
name=
for info in $VBLK_DISK_INFO; do
	[ "$(vblk_dev "${info%%:*}")" = "$dev" ] && name=${info%%:*}
done
dd if=/dev/urandom of=/tmp/vblk_install.ref bs=64k count=16 2>/dev/null
dd if=/tmp/vblk_install.ref of="$dev" bs=64k oflag=direct conv=fsync 2>/dev/null ||
	fail "writing the reference data to $dev failed"

# check HOW: the adaptive module is loaded, the disks are back and the
# reference data reads back.
check() {
	ours || fail "$1: the stock virtio_blk was loaded"
	wait_disks || fail "$1: only $(ls -d /sys/block/vd* 2>/dev/null | wc -l) of $VBLK_NDISKS disks"
	dev=$(vblk_dev "$name") || fail "$1: disk $name missing"
	dd if="$dev" of=/tmp/vblk_install.got bs=64k count=16 iflag=direct 2>/dev/null ||
		fail "$1: reading $dev failed"
	cmp -s /tmp/vblk_install.ref /tmp/vblk_install.got || fail "$1: data on $dev changed"
	ktap_log "$1: adaptive virtio_blk ($(cat /sys/module/virtio_blk/taint)), $VBLK_NDISKS disks, data intact"
}

unload() {
	vblk_unload || fail "rmmod virtio_blk failed: $(rmmod virtio_blk 2>&1)"
	[ ! -e /sys/module/virtio_blk ] || fail "virtio_blk still loaded"
}

# make install: one module in updates/, and that is what names resolve to.
files=$(installed | tr '\n' ' ')
case $files in
"kernel/drivers/block/virtio_blk.ko updates/"*" ") ;;
*) fail "want the stock module and one in updates/, have: $files" ;;
esac
set -- $files
[ $# = 2 ] || fail "want the stock module and one in updates/, have: $files"
[ "$($bin/modinfo -n virtio_blk)" = "$mods/$2" ] ||
	fail "kmod modinfo resolves virtio_blk to $($bin/modinfo -n virtio_blk), not $mods/$2"
ktap_log "make install: $2"

check "boot, udev coldplug"
unload
modprobe virtio_blk || fail "busybox modprobe virtio_blk failed"
check "busybox modprobe virtio_blk"
unload
$bin/modprobe virtio_blk || fail "kmod modprobe virtio_blk failed"
check "kmod modprobe virtio_blk"

# Control: without updates/ the same commands load the stock driver.
unload
mv $mods/updates /tmp/vblk_install.updates
$bin/depmod || fail "depmod failed"
$bin/modprobe virtio_blk || fail "kmod modprobe of the stock virtio_blk failed"
ours && fail "control: the adaptive module loaded without updates/"
[ -e /sys/module/virtio_blk ] || fail "control: nothing loaded"
wait_disks || fail "control: the stock driver did not bring the disks back"
ktap_log "control: without updates/, modprobe virtio_blk loads the stock module"
unload

# dkms install: its tree replaces the make install one, udev loads it.
rm -rf $mods
cp -a /vblk/files/dkms-modules $mods
files=$(installed | tr '\n' ' ')
[ "$files" = "kernel/drivers/block/virtio_blk.ko updates/dkms/virtio_blk.ko " ] ||
	fail "dkms tree: want the stock module and updates/dkms/virtio_blk.ko, have: $files"
# udevd's libkmod keeps the indexes it mapped and looks for new ones at
# most every 3 s, when an event comes: have it reload now, as a udevd
# started after the install would.  udevd may ignore the control message
# (see vblk_udev_hold in vblk_lib.sh) and udevadm would not say, so the
# event comes more than 3 s after the install too: udevd looks then.
udevadm control --reload || fail "udevadm control --reload failed"
sleep 4
udevadm trigger --action=add --subsystem-match=virtio || fail "udevadm trigger failed"
udevadm settle --timeout=20
check "dkms install, udev coldplug"
exit $KSFT_PASS
