#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# DMA mapping failures under deep queues: with a tiny bounce buffer pool
# (swiotlb=...,force on the kernel command line) and devices that use the
# DMA API (iommu_platform=on), adding a command fails with -ENOMEM
# whenever the pool is full.  Such commands wait parked and are retried,
# also when the ring has gone idle: every I/O completes, verified, on
# every path of every disk, and nothing hangs.
#
# Faults: a tiny bounce buffer pool fails DMA mappings under deep queues
# (commands park and are retried); a back end that breaks its used ring
# under fio (every I/O ends with EIO, devices and module go away).
# vmtest guest ours-dma --driver ours --append swiotlb=128,force
# vmtest disk plain ram size=64M dev.bio=off dev.iommu_platform=on dev.disable-legacy=on
# vmtest disk capable ram size=64M dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45 dev.iommu_platform=on dev.disable-legacy=on
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || fail "needs the adaptive driver"
grep -q "swiotlb=[0-9]*,force" /proc/cmdline || fail "no swiotlb=N,force on the command line"
vblk_debugfs

n=0
for s in /sys/block/vd*; do
	dev=/dev/${s##*/}
	[ "$(cat "$s/ro")" = 0 ] || continue
	queues=/sys/kernel/debug/virtio_blk/${s##*/}/queues
	for p in $(vblk_paths "$s"); do
		vblk_set_path "$s" $p || fail "$dev: cannot switch to $p"
		m0=$(vblk_qstat "$queues" nomem)
		vblk_fio_verified 240 "dma-$p" "$dev" --ioengine=libaio \
			--iodepth=64 --iodepth_batch_submit=16 --bsrange=4k-128k \
			--size=32M
		m=$(($(vblk_qstat "$queues" nomem) - m0))
		# The driver's own count: the kernel's "swiotlb buffer is
		# full" lines are rate-limited.
		[ "$m" -gt 0 ] ||
			fail "$dev, $p: no add failed for want of bounce buffers: nothing tested"
		ktap_log "$dev, $p: 64 in flight verified; $m adds failed on a full bounce pool and were retried"
		n=$((n + 1))
	done
done
[ $n -ge 3 ] || fail "only $n disk/path pairs tested: want a plain disk and a bio-capable one"
exit $KSFT_PASS
