#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Notification batching, on both paths, from the driver's own counters
# (/sys/kernel/debug/virtio_blk/vdX/queues: commands added to each ring,
# notifications sent).  One io_submit() of BATCH reads runs under one
# plug, and the device is idle when each batch starts (fio waits for the
# whole batch to complete): a plugged batch must cost one notification,
# where the same reads one at a time cost about one each.
#
# vmtest guest ours-capable --driver ours
# vmtest disk d1 ram size=64M dev.num-queues=2 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

BATCH=32
BATCHES=100

vblk_require ours
dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")
vblk_keep_path "$sys"
vblk_debugfs
queues=/sys/kernel/debug/virtio_blk/${dev#/dev/}/queues
[ -r "$queues" ] || fail "no $queues"

# reads DEPTH BATCH IOS: IOS 4 KiB direct reads from CPU 0, DEPTH at a
# time, submitted and reaped BATCH at a time.
reads() {
	fio --name=kick --filename="$dev" --rw=randread --bs=4k --direct=1 \
		--ioengine=libaio --iodepth="$1" --iodepth_batch_submit="$2" \
		--iodepth_batch_complete_min="$2" --number_ios="$3" \
		--size=16M --cpus_allowed=0 --norandommap \
		--output=/dev/null || fail "$p: fio failed"
}

# measure DEPTH BATCH IOS: "ADDED NOTIFIED" for one reads run.
measure() {
	local a0 n0
	a0=$(vblk_qstat "$queues" added)
	n0=$(vblk_qstat "$queues" notified)
	reads "$@"
	echo "$(($(vblk_qstat "$queues" added) - a0)) $(($(vblk_qstat "$queues" notified) - n0))"
}

ios=$((BATCH * BATCHES))
for p in $(vblk_paths "$sys"); do
	vblk_set_path "$sys" "$p" || fail "cannot switch to $p"
	vblk_settle

	set -- $(measure 1 1 $ios)
	ktap_log "$p: $ios reads one at a time: $1 commands, $2 notifications"
	[ "$1" -ge $ios ] || fail "$p: $1 commands counted for $ios reads"
	[ "$2" -ge $((ios / 2)) ] ||
		fail "$p: $2 notifications for $ios unbatched reads: not counted?"

	set -- $(measure $BATCH $BATCH $ios)
	ktap_log "$p: $BATCHES plugged batches of $BATCH: $1 commands, $2 notifications"
	[ "$1" -ge $ios ] || fail "$p: $1 commands counted for $ios reads"
	# One per batch, and some slack for a batch the scheduler splits
	# (the task sleeping in the middle of io_submit flushes its plug).
	[ "$2" -le $((BATCHES + BATCHES / 10)) ] ||
		fail "$p: $2 notifications for $BATCHES plugged batches"
done
vblk_put_back_path "$sys"
exit $KSFT_PASS
