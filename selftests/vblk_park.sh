#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Commands that find the ring full wait parked on their queue, on both
# paths, and the completion (or, on a poll queue, the poller) moves them
# onto the ring.  The hidden request disk has more tags than the ring has
# slots, so that blk-mq hands the driver the next requests before there is
# room for them; but a request continuing a parked stream is held back in
# blk-mq, to merge.
#
# The disks to test are those with an expect.tags=N key: the tags each
# hardware context of their hidden disk must have (twice what fills the
# ring, or the queue_depth module parameter).  On a disk of role
# fits-ring, whose tags do not exceed its ring, requests must never park (bios still
# do: nothing bounds them but memory).
#
# Parking on a ring of 4: more tags than fit (queue_depth=8; 4 fit with
# indirect descriptors, 2 without: the F_BIO hint turns them off), with
# mq-deadline (one queue) and with a default and a poll queue (none);
# queue_depth= below the ring.  io_path=bio: bio-capable disks, which run
# both paths.
# vmtest guest ours-park --driver ours --module-param io_path=bio
# vmtest with --module-param queue_depth=8 --module-param poll_queues=1
# vmtest disk park1 ram size=64M dev.queue-size=4 dev.num-queues=1 dev.bio=off \
#     expect.tags=8
# vmtest disk park2 ram size=64M dev.queue-size=4 dev.num-queues=2 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45 \
#     expect.tags=8
# vmtest run data_integrity
# vmtest guest ours-park-depth --driver ours --module-param io_path=bio
# vmtest with --module-param queue_depth=3
# vmtest disk noroom ram size=64M dev.queue-size=4 dev.bio=off role=fits-ring \
#     expect.tags=3
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || fail "needs the adaptive driver"
disks=$(vblk_expect_disks tags)
[ -n "$disks" ] || fail "no disk has an expect.tags key"
vblk_debugfs

# verify NAME FIO-ARGS...: 4k writes (random unless FIO-ARGS say) read
# back and checked, 64 in flight, bounded in time (a parked command nobody
# moves, or a held-back request nobody reruns, never completes).
verify() {
	local name=$1
	shift
	vblk_fio_verified 120 "$name" "$dev" --size=16M --iodepth=64 \
		--iodepth_batch_submit=16 "$@"
}

# fits NAME: the disk's tags fit its ring (role=fits-ring).
fits() {
	vblk_role_disks fits-ring | grep -qx "$1"
}

# idle: nothing left in flight on the disk or its hidden disk (5 s).
idle() {
	vblk_wait_idle 5 "$name" "$sys/inflight" "/sys/block/$hidden/inflight"
}

for name in $disks; do
	want=$(vblk_expect "$name" tags)
	dev=$(vblk_dev "$name") || fail "no disk $name"
	sys=$(vblk_sys "$dev")
	# The hidden disk: the other disk of the same virtio device.
	vdev=$(basename "$(readlink -f "$sys/device")")
	hidden=
	for d in /sys/bus/virtio/devices/"$vdev"/block/*; do
		[ "${d##*/}" = "${dev#/dev/}" ] || hidden=${d##*/}
	done
	[ -n "$hidden" ] || fail "$name: no hidden disk next to $dev"
	queues=/sys/kernel/debug/virtio_blk/${dev#/dev/}/queues
	[ -r "$queues" ] || fail "no $queues"
	dbg=/sys/kernel/debug/block/$hidden
	[ -d "$dbg" ] || fail "no $dbg (no CONFIG_BLK_DEBUG_FS?)"

	for tags in "$dbg"/hctx*/tags; do
		have=$(sed -n 's/^nr_tags=//p' "$tags")
		[ "$have" = "$want" ] ||
			fail "$name: ${tags#"$dbg"/} has $have tags, want $want"
	done
	nq=$(wc -l <"$queues")
	ktap_log "$name ($dev, $hidden): $nq queues, $want tags per hctx"

	for p in $VBLK_PATHS; do
		vblk_set_path "$sys" $p || fail "$name: cannot switch to $p"
		vblk_settle
		p0=$(vblk_qstat "$queues" parked)
		h0=$(vblk_qstat "$queues" held)
		verify "$name-$p" --ioengine=libaio
		n=$(($(vblk_qstat "$queues" parked) - p0))
		h=$(($(vblk_qstat "$queues" held) - h0))
		idle
		ktap_log "$name, $p path, random: 64 in flight verified, $n commands parked, $h held back"
		if [ $p = request ] && fits "$name"; then
			[ "$n" = 0 ] ||
				fail "$name, $p: $n requests parked with no more tags than ring slots"
		else
			[ "$n" -gt 0 ] || fail "$name, $p: nothing parked at 64 in flight"
		fi
		# Random writes rarely continue the previous one: a few may.
		[ $((h * 4)) -le "$n" ] ||
			fail "$name, $p: $h random writes held back for $n parked"
	done

	# A sequential stream: requests that continue the last one queued go
	# back to the scheduler to merge while one of them is parked.
	vblk_set_path "$sys" request || fail "$name: cannot switch to request"
	vblk_settle
	p0=$(vblk_qstat "$queues" parked)
	h0=$(vblk_qstat "$queues" held)
	verify "$name-sequential" --ioengine=libaio --rw=write
	n=$(($(vblk_qstat "$queues" parked) - p0))
	h=$(($(vblk_qstat "$queues" held) - h0))
	idle
	ktap_log "$name, request path, sequential: 64 in flight verified, $n parked, $h held back"
	if fits "$name"; then
		[ "$n$h" = 00 ] ||
			fail "$name: $n parked, $h held back with no more tags than ring slots"
	else
		[ "$h" -gt 0 ] || fail "$name: no sequential request held back ($n parked)"
	fi

	# Poll queues have no interrupt to drain their park.
	if grep -q "^req_poll" "$queues"; then
		vblk_set_path "$sys" request || fail "$name: cannot switch to request"
		vblk_settle
		p0=$(vblk_qstat "$queues" parked req_poll)
		verify "$name-polled" --ioengine=io_uring --hipri
		n=$(($(vblk_qstat "$queues" parked req_poll) - p0))
		idle
		ktap_log "$name, polled requests: 64 in flight verified, $n parked on the poll queue"
		[ "$n" -gt 0 ] || fail "$name: nothing parked on the poll queue"
	fi
done
exit $KSFT_PASS
