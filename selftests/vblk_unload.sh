#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Module unload and reload: data written before an unload reads back
# after the reload, on both paths, and a bad io_path= refuses the load
# with EINVAL.  Needs the runner's copy of the module (/vblk/virtio_blk.ko)
# and no mounted virtio disk.
#
# vmtest guest ours-unload --driver ours
# vmtest disk d1 ram size=64M dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
# vmtest disk plain ram size=16M dev.bio=off
. ./test_common.sh
. ./vblk_lib.sh

ko=/vblk/virtio_blk.ko
vblk_require ours $ko
grep -q '^/dev/vd' /proc/mounts && fail "a virtio disk is mounted: cannot unload"

name=
for info in $VBLK_DISK_INFO; do
	rest=${info#*:}
	[ "${rest%%:*}" = null ] && continue
	name=${info%%:*}
	break
done
[ -n "$name" ] || fail "no data disk"

dd if=/dev/urandom of=/tmp/vblk_unload.ref bs=64k count=16 2>/dev/null
for p in bio request bio; do
	dev=$(vblk_dev "$name") || fail "$name missing"
	dd if=/tmp/vblk_unload.ref of="$dev" bs=64k oflag=direct conv=fsync 2>/dev/null ||
		fail "$p: write before unload failed"
	vblk_unload || fail "rmmod failed: $(rmmod virtio_blk 2>&1)"
	[ -e /sys/module/virtio_blk ] && fail "module still loaded"
	ls /sys/block | grep -q '^vd' && fail "disks left after unload"

	err=$(insmod $ko io_path=bogus 2>&1) && fail "insmod io_path=bogus succeeded"
	case $err in
	*"Invalid argument"*|*"Invalid parameters"*) ;;
	*) fail "insmod io_path=bogus: $err" ;;
	esac
	[ -e /sys/module/virtio_blk ] && fail "module loaded despite io_path=bogus"

	insmod $ko io_path=$p || fail "insmod io_path=$p failed"
	vblk_wait 10 "$name to come back" vblk_has_disk "$name"
	dev=$(vblk_dev "$name")
	[ "$(cat "$(vblk_sys "$dev")/io_path")" = $p ] || fail "io_path is not $p"
	dd if="$dev" of=/tmp/vblk_unload.got bs=64k count=16 iflag=direct 2>/dev/null ||
		fail "$p: read after reload failed"
	cmp -s /tmp/vblk_unload.ref /tmp/vblk_unload.got || fail "$p: data changed across reload"
	ktap_log "$p: unload/reload kept the data"
done
exit $KSFT_PASS
