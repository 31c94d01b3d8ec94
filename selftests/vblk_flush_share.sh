#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Concurrent fsyncs share device flushes, on both paths (blk-mq's flush
# machinery on the request path, the driver's own on the bio path): 16
# writers each doing 16 writes with an fsync after each, on a disk whose
# every request (flushes included) takes 20 ms, must cost at most half as
# many device flushes as fsyncs (field 16 of the disk's stat).  The
# writes of a bio are flushed by the flush it shares: a flush joins only
# a device flush issued after it arrived (checked by vblk_switch.sh and
# data_integrity, which verify data across flushes).
#
# Concurrent fsyncs share device flushes on both paths: every request of
# this null-co disk (flushes too) takes 20 ms, so writers overlap.
# vmtest guest ours-flush --driver ours
# vmtest disk n null size=64M latency-ns=20000000 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || fail "needs the adaptive driver"
vblk_debugfs
sys=$(vblk_capable_writable) || fail "no writable bio-capable disk"
dev=/dev/${sys##*/}
[ "$(cat "$sys/queue/write_cache")" = "write back" ] ||
	fail "$dev: write through, fsync sends no flush"
dbg=/sys/kernel/debug/virtio_blk/${sys##*/}/flushes
jobs=16
ios=16

flushes() { awk '{ print $16 }' "$sys/stat"; }

for p in $(vblk_paths "$sys"); do
	vblk_set_path "$sys" $p || fail "cannot switch $dev to $p"
	vblk_settle
	f0=$(flushes)
	timeout -s KILL 300 fio --name=fsyncs --filename="$dev" --rw=randwrite \
		--bs=4k --direct=1 --ioengine=psync --fsync=1 --numjobs=$jobs \
		--number_ios=$ios --size=16M --output=/tmp/vblk_flush.fio \
		>/dev/null 2>&1 || { cat /tmp/vblk_flush.fio; fail "$p: fio failed"; }
	n=$(($(flushes) - f0))
	fsyncs=$((jobs * ios))
	ktap_log "$p: $fsyncs concurrent fsyncs cost $n device flushes; bio path: $(cat "$dbg")"
	[ "$n" -gt 0 ] || fail "$p: no flush counted"
	[ $((n * 2)) -le $fsyncs ] || fail "$p: $n device flushes for $fsyncs fsyncs: not shared"
done
exit $KSFT_PASS
