#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Every disk the host attached is present with the right size, is driven
# by the expected virtio_blk module, and its first and last blocks read.
#
# The in-tree driver, and ours on each io_path, on a ram and a file disk;
# and the in-tree driver on the vhost-user test back end (with and without
# event index and indirect descriptors, one and two queues): a back end
# that fails there is not a driver bug in the tests that use it.
# vmtest guest stock-ram-file --driver stock
# vmtest disk ram ram
# vmtest disk file file
# vmtest run data_integrity vblk_stat.sh
# vmtest guest ours-auto --driver ours
# vmtest disk ram ram
# vmtest disk file file
# vmtest run data_integrity
# vmtest guest ours-bio --driver ours --module-param io_path=bio
# vmtest disk ram ram
# vmtest disk file file
# vmtest run data_integrity
# vmtest guest ours-request --driver ours --module-param io_path=request
# vmtest disk ram ram
# vmtest disk file file
# vmtest run data_integrity
# vmtest guest vhost-stock --driver stock
# vmtest disk vu vhost size=32M
# vmtest disk vu2 vhost size=32M feat.event_idx=off feat.indirect_desc=off \
#     dev.num-queues=2 feat.mq=on
# vmtest run data_integrity
. ./test_common.sh

[ -n "$VBLK_DISK_INFO" ] || fail "no disks in /vblk/run.conf"

if [ "$VBLK_DRIVER" = ours ]; then
	[ -e /sys/module/virtio_blk/parameters/io_path ] ||
		fail "our virtio_blk is not the one loaded"
elif [ "$VBLK_DRIVER" = stock ]; then
	[ ! -e /sys/module/virtio_blk/parameters/io_path ] ||
		fail "the stock virtio_blk is not the one loaded"
fi

for info in $VBLK_DISK_INFO; do
	name=${info%%:*}
	bytes=${info##*:}
	dev=$(vblk_dev "$name") || fail "disk $name did not appear"
	sectors=$(cat "/sys/block/${dev#/dev/}/size")
	[ "$((sectors * 512))" = "$bytes" ] ||
		fail "$name ($dev): $((sectors * 512)) bytes, expected $bytes"
	dd if="$dev" of=/dev/null bs=4096 count=1 2>/dev/null ||
		fail "$name ($dev): reading block 0 failed"
	dd if="$dev" of=/dev/null bs=4096 skip=$((bytes / 4096 - 1)) count=1 2>/dev/null ||
		fail "$name ($dev): reading the last block failed"
	ktap_log "$name: $dev, $bytes bytes, rotational=$(cat /sys/block/${dev#/dev/}/queue/rotational)"
done
exit $KSFT_PASS
