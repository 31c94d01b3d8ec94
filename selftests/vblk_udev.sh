#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The shipped udev rule (guest/81-virtio-blk-io-path.rules, passed to the
# guest with --file) pins disks whose serial is pin-bio* or pin-request*
# (here the disks with role=pinned; expect.io-path says which) to their
# path under systemd-udevd, against the module's own choice, and again
# after a module reload.  A plain disk pinned to bio is re-created
# bio-capable: the rule acts on the virtio device, whose events udev
# handles while it does not hold the disk open.
#
# vmtest guest ours-udev --driver ours --file guest/81-virtio-blk-io-path.rules
# The medium of each disk asks auto for the other path (QEMU's test-only
# x-test-* properties, see vblk_medium.sh): rotating for the one pinned to bio, fast
# for the one pinned to request.
# vmtest disk pin-bio1 ram size=16M dev.bio=on dev.x-test-rotation-rate=7200 \
#   dev.x-test-read-latency-hint=0 role=pinned expect.io-path=bio
# vmtest disk pin-request1 ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 role=pinned expect.io-path=request
. ./test_common.sh
. ./vblk_lib.sh

rules=81-virtio-blk-io-path.rules
vblk_require ours udev /vblk/files/$rules
pinned=$(vblk_role_disks pinned)
[ -n "$pinned" ] || fail "no disk with role=pinned"

mkdir -p /etc/udev/rules.d
cp /vblk/files/$rules /etc/udev/rules.d/ || fail "cannot install $rules"
udevadm control --reload || fail "udevadm control --reload failed"

check() {
	local d dev sys want
	for d in $pinned; do
		want=$(vblk_expect "$d" io-path) || fail "$d has no expect.io-path"
		dev=$(vblk_dev "$d") || fail "$d missing"
		sys=$(vblk_sys "$dev")
		[ "$(cat "$sys/io_path")" = $want ] ||
			fail "$1: $d is on $(cat "$sys/io_path"), pinned to $want"
		[ "$(cat "$sys/io_path_reason")" = "io_path written by user" ] ||
			fail "$1: $d reason is $(cat "$sys/io_path_reason")"
		ktap_log "$1: $d pinned to $want"
	done
}

udevadm trigger --action=change --subsystem-match=virtio || fail "trigger failed"
udevadm settle --timeout=20
check "change event"

# After a reload the module would choose again; the rule must win.
if [ -r /vblk/virtio_blk.ko ] && ! grep -q '^/dev/vd' /proc/mounts; then
	vblk_unload || fail "rmmod failed"
	for p in bio request; do
		insmod /vblk/virtio_blk.ko io_path=$p || fail "insmod io_path=$p failed"
		udevadm settle --timeout=20
		for d in $pinned; do
			vblk_wait 10 "$d to come back" vblk_has_disk "$d"
		done
		udevadm settle --timeout=20
		check "reload with io_path=$p"
		[ $p = request ] && break
		udevadm settle --timeout=20
		vblk_unload || fail "rmmod failed"
	done
fi
exit $KSFT_PASS
