#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest half of "make demo": for each disk, one line with what the guest
# negotiated and chose, and a short 4k random-read fio figure.
. /selftests/test_common.sh

for info in $VBLK_DISK_INFO; do
	name=${info%%:*}
	dev=$(vblk_dev "$name") || { echo "DEMO $name missing"; continue; }
	blk=${dev#/dev/}
	# virtio's features file: one character per bit, bit 0 first.
	features=$(cat "/sys/block/$blk/device/features")
	bio=$(echo "$features" | cut -c$((VIRTIO_BLK_F_BIO + 1)))
	path=$(cat "/sys/block/$blk/io_path" 2>/dev/null || echo "request(stock)")
	reason=$(cat "/sys/block/$blk/io_path_reason" 2>/dev/null | tr " " "_" || echo "-")
	rot=$(cat "/sys/block/$blk/queue/rotational")
	iops=$(fio --name=demo --filename="$dev" --rw=randread --bs=4k \
		--ioengine=libaio --iodepth=16 --direct=1 --time_based \
		--runtime="${DEMO_SECONDS:-3}" --minimal 2>/dev/null | cut -d';' -f8)
	echo "DEMO $name dev=$dev bio_negotiated=$bio path=$path reason=$reason rotational=$rot iops=${iops:-error}"
done
