#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Capacity change through the config interrupt: the host grows a disk
# (QMP block_resize) while it is under I/O on each path; the new size
# shows and the new blocks are usable on both paths.
#
# vmtest guest ours-capable --driver ours
# vmtest disk d1 ram size=64M dev.num-queues=2 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

# sized SECTORS: the disk under test has SECTORS.
sized() {
	[ "$(cat "$sys/size")" = "$1" ]
}

dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")
vblk_keep_path "$sys"
name=$(cat "$sys/serial")

paths=current
vblk_ours && paths=$(vblk_paths "$sys")
for p in $paths; do
	[ "$p" = current ] || vblk_set_path "$sys" "$p" || fail "cannot switch to $p"
	old=$(cat "$sys/size")
	new=$((old * 512 + 16 * 1048576))
	fio --name=rs --filename="$dev" --rw=randrw --bs=4k --iodepth=8 \
	    --ioengine=libaio --direct=1 --time_based --runtime=4 --size=8M \
	    --output=/tmp/vblk_resize.fio >/dev/null 2>&1 &
	fiopid=$!
	vblk_wait 60 "$p: fio's I/O in flight" vblk_busy $(vblk_inflight_files "$sys")
	vblk_host qmp "{\"execute\": \"block_resize\", \"arguments\": {\"node-name\": \"n-$name\", \"size\": $new}}" >/dev/null ||
		fail "$p: block_resize failed"
	vblk_until 60 sized $((new / 512)) ||
		fail "$p: size is $(cat "$sys/size") after 60 s, expected $((new / 512))"
	wait $fiopid || fail "$p: fio failed during the resize"
	grep -q "err= 0" /tmp/vblk_resize.fio || fail "$p: fio reported errors"

	# The last block, new, reads and writes.
	dd if=/dev/urandom of=/tmp/vblk_resize.ref bs=4k count=1 2>/dev/null
	dd if=/tmp/vblk_resize.ref of="$dev" bs=4k seek=$((new / 4096 - 1)) \
	   oflag=direct 2>/dev/null || fail "$p: writing the new last block failed"
	dd if="$dev" of=/tmp/vblk_resize.got bs=4k skip=$((new / 4096 - 1)) \
	   count=1 iflag=direct 2>/dev/null || fail "$p: reading the new last block failed"
	cmp -s /tmp/vblk_resize.ref /tmp/vblk_resize.got || fail "$p: last block differs"
	ktap_log "$p: grew to $new bytes under I/O"
done
vblk_put_back_path "$sys"
exit $KSFT_PASS
