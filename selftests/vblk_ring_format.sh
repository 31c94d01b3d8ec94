#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The ring format the driver negotiates.  It turns indirect descriptors
# (VIRTIO_RING_F_INDIRECT_DESC) off only for a device that, at
# negotiation, reports a non-rotating medium with a read latency of at
# most bio_latency_us: never on a latency not reported yet (the device
# may still be measuring it), never under io_path=request (the in-tree
# driver's negotiation), never without VIRTIO_BLK_F_BIO.  Each disk's
# expect.direct=0|1 says what auto and io_path=bio give it; every disk
# is bound again under each policy, and again with bio_latency_us below
# the fast disk's latency.  Last, a device that reports its latency only
# after negotiation moves to the bio path and keeps indirect descriptors,
# with verified I/O on it.  The media are pinned (x-test-*): nothing here
# depends on what the host measures.
#
# vmtest guest ours-ring-format --driver ours
# vmtest disk fast ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 expect.direct=1
# vmtest disk unmeasured ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=0 expect.direct=0
# vmtest disk slow ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=5000 expect.direct=0
# vmtest disk rotating ram size=16M dev.bio=on dev.x-test-rotation-rate=7200 \
#   dev.x-test-read-latency-hint=45 expect.direct=0
# vmtest disk nobit ram size=16M dev.bio=off expect.direct=0
. ./test_common.sh
. ./vblk_lib.sh

VIRTIO_RING_F_INDIRECT_DESC=28
params=/sys/module/virtio_blk/parameters
drv=/sys/bus/virtio/drivers/virtio_blk

vblk_require ours fio
disks=$(vblk_expect_disks direct)
[ -n "$disks" ] || fail "no disk has an expect.direct key"
limit=$(cat $params/bio_latency_us)
policy=$(cat $params/io_path)
[ "$policy" = auto ] || fail "io_path parameter reads '$policy', want auto"
trap 'echo auto >$params/io_path; echo "$limit" >$params/bio_latency_us' EXIT

# indirect NAME: 1 if disk NAME's device negotiated indirect descriptors.
indirect() {
	local dev
	dev=$(vblk_dev "$1") || fail "$1: no disk"
	cut -c$((VIRTIO_RING_F_INDIRECT_DESC + 1)) "$(vblk_sys "$dev")/device/features"
}

# rebind NAME: unbind disk NAME's virtio device and bind it again, which
# negotiates its features anew.
rebind() {
	local dev vdev
	dev=$(vblk_dev "$1") || fail "$1: no disk"
	vdev=$(readlink -f "$(vblk_sys "$dev")/device")
	vdev=${vdev##*/}
	vblk_settle
	echo "$vdev" >$drv/unbind || fail "$1: cannot unbind $vdev"
	echo "$vdev" >$drv/bind || fail "$1: cannot bind $vdev"
	vblk_wait 10 "$1 to come back" vblk_has_disk "$1"
}

# check NAME WANT WHAT: disk NAME, bound again, negotiated indirect
# descriptors (WANT 1) or not (0), and reads back what it was written.
check() {
	local got dev
	rebind "$1"
	got=$(indirect "$1")
	[ "$got" = "$2" ] ||
		fail "$1 ($3): VIRTIO_RING_F_INDIRECT_DESC negotiated=$got, expected $2"
	dev=$(vblk_dev "$1")
	dd if=/tmp/vblk_ring.ref of="$dev" bs=64k oflag=direct 2>/dev/null ||
		fail "$1 ($3): write failed"
	dd if="$dev" of=/tmp/vblk_ring.got bs=64k count=8 iflag=direct 2>/dev/null ||
		fail "$1 ($3): read failed"
	cmp -s /tmp/vblk_ring.ref /tmp/vblk_ring.got || fail "$1 ($3): data differs"
	ktap_log "$1 ($3): indirect descriptors $got"
}

dd if=/dev/urandom of=/tmp/vblk_ring.ref bs=64k count=8 2>/dev/null
for p in auto bio request; do
	echo $p >$params/io_path || fail "cannot set io_path=$p"
	for name in $disks; do
		direct=$(vblk_expect "$name" direct)
		case $direct in
		0|1) ;;
		*) fail "$name: expect.direct=$direct: want 0 or 1" ;;
		esac
		[ $p = request ] && direct=0
		# Every device here offers indirect descriptors.
		check "$name" $((1 - direct)) "io_path=$p"
	done
done

# A limit below the fast disk's 45 us: indirect descriptors kept.
echo auto >$params/io_path || fail "cannot set io_path=auto"
echo 40 >$params/bio_latency_us || fail "cannot set bio_latency_us=40"
check fast 1 "bio_latency_us=40"
echo "$limit" >$params/bio_latency_us || fail "cannot restore bio_latency_us"

# Measured after negotiation: the path follows, the ring format does not.
check unmeasured 1 "latency not reported at negotiation"
r=$(vblk_host qmp '{"execute": "qom-set", "arguments": {"path": "/machine/peripheral/unmeasured", "property": "x-test-read-latency-hint", "value": 45}}') ||
	fail "unmeasured: qom-set x-test-read-latency-hint=45: $r"
dev=$(vblk_dev unmeasured)
sys=$(vblk_sys "$dev")
reason="read_latency_hint 45 us <= $limit us"
on_bio() {
	[ "$(cat "$sys/io_path")" = bio ] && [ "$(cat "$sys/io_path_reason")" = "$reason" ]
}
vblk_wait 30 "unmeasured: the bio path for the latency reported late" on_bio
[ "$(indirect unmeasured)" = 1 ] ||
	fail "unmeasured: indirect descriptors gone without a new negotiation"
vblk_fio_verified 60 ring-late "$dev" --size=8M --iodepth=16 --ioengine=libaio
ktap_log "unmeasured: latency reported late: bio path, indirect descriptors kept, verified I/O"
exit $KSFT_PASS
