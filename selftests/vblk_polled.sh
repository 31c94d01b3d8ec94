#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Polled I/O through io_uring (IORING_SETUP_IOPOLL: fio --hipri), direct:
# on every writable disk, on every path it runs, 4 MiB of 4k random
# writes with 16 in flight and 8 MiB of writes of 64k to 1M (which the
# block layer may split, and then completes by interrupt) with 4 in
# flight, each read back, polled too, and checked (crc32c); a null-co
# disk (slow by design, reads zeroes) gets a quarter of that with the
# checks only pretended.  Every run must finish in its bound, issue all
# its I/O and report no error; then nothing may be in flight.  On the
# request path the 4k I/O goes to the poll queues, which have no
# interrupt: the device's default queues may take at most one interrupt
# per 16 of its I/Os (udev's probes held meanwhile).  On the bio path of
# a bio-capable disk the driver completes polled bios by interrupt, and
# io_uring's polling must still see them complete.
#
# Needs poll queues: the module loaded with poll_queues=1 (or more) and
# a device with at least 2 queues (dev.num-queues=2), for the in-tree
# driver as for ours; and debugfs (the runner's init mounts it) to see
# the blk-mq queue's poll hctx.  A disk whose queue/io_poll is not 1
# fails.
#
# Guests: a poll queue beside the default ones, under the in-tree driver
# and with ours on a plain and a bio-capable disk.
# vmtest guest blk-poll-stock --driver stock --module-param poll_queues=1
# vmtest disk r ram size=64M dev.num-queues=3
# vmtest disk n null size=64M latency-ns=10000000 dev.num-queues=3
# vmtest guest blk-poll-ours --driver ours --module-param poll_queues=1
# vmtest disk plain ram size=64M dev.num-queues=3 dev.bio=off
# vmtest disk capable ram size=64M dev.num-queues=3 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

# irqs VDEV: interrupts so far of the virtio device's default queues
# ("VDEV-req.N"; a poll queue has no interrupt), all CPUs.
irqs() {
	awk -v q="$1-req." '
		index($NF, q) == 1 {
			for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++)
				n += $i
		}
		END { print n + 0 }' /proc/interrupts
}

trap vblk_udev_release EXIT

poll_queues=$(cat /sys/module/virtio_blk/parameters/poll_queues 2>/dev/null)
[ -d /sys/kernel/debug/block ] || fail "no /sys/kernel/debug/block (debugfs not mounted?)"
# setup: MiB of the small job ($MIB; the large one does twice that),
# and the disk's poll queues, which must exist: vdX's own, and on a
# bio-capable disk the hidden disk's, where the request path sends I/O.
setup() {
	local q mq=$vd
	MIB=4
	[ "$null" = 1 ] && MIB=1
	IOS=$((MIB * 256))	# 4k writes of the small job, as many reads
	[ "$(cat "$sys/size")" -ge $((4 * MIB * 2048)) ] || fail "$dev: smaller than $((4 * MIB)) MiB"
	for q in "$sys" $(h=$(vblk_hidden "$sys") && echo "/sys/block/$h"); do
		[ "$(cat "$q/queue/io_poll")" = 1 ] ||
			fail "${q##*/}: queue/io_poll is $(cat "$q/queue/io_poll"), no poll queue" \
			     "(module parameter poll_queues=${poll_queues:-?}; needs poll_queues=1" \
			     "and a device with dev.num-queues=2 or more)"
		mq=${q##*/}	# the blk-mq disk: the hidden one if there is one
	done
	grep -qx poll /sys/kernel/debug/block/"$mq"/hctx*/type ||
		fail "$mq: no poll hctx in /sys/kernel/debug/block/$mq"
	vdev=$(basename "$(readlink -f "$sys/device")")
	grep -q " $vdev-req\." /proc/interrupts || fail "$vd: no $vdev-req.N in /proc/interrupts"
}

run() {
	local i0 i1
	# udev's probes (when fio closes the disk) would be interrupts.
	vblk_udev_hold 60 "$tag: before the small job"
	i0=$(irqs "$vdev")
	vblk_fio_verified 100 "polled-small-$p" "$dev" --ioengine=io_uring --hipri \
		--iodepth=16 --size=${MIB}M $verify
	i1=$(irqs "$vdev")
	vblk_udev_release
	grep -q "issued rwts: total=$IOS,$IOS," /tmp/vblk_fio.out ||
		{ cat /tmp/vblk_fio.out; fail "$tag: small: not $IOS writes and reads"; }
	[ "$p" = bio ] || [ $((i1 - i0)) -le $((IOS / 8)) ] ||
		fail "$tag: $((i1 - i0)) interrupts for $((2 * IOS)) polled I/Os: not on the poll queues"
	vblk_fio_verified 100 "polled-large-$p" "$dev" --ioengine=io_uring --hipri \
		--iodepth=4 --bsrange=64k-1m --offset=$((2 * MIB))M --size=$((2 * MIB))M $verify
	vblk_settle
	ktap_log "$tag: polled: $IOS 4k writes ($((i1 - i0)) interrupts for them and their reads)," \
		"$((2 * MIB)) MiB in 64k-1M writes, all read back, $how"
}

vblk_each_path setup run
exit $KSFT_PASS
