#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The request path of a bio-capable disk: vdX remaps its bios to the
# hidden blk-mq disk.  What users read of vdX must still hold there:
# partition statistics and flush statistics move, a cgroup's io.stat has
# vdX's row and no "(unknown)" one for the hidden disk, and tracing sees
# the remap (block_bio_remap from vdX).  The same on the bio path.
#
# vmtest guest ours-remap --driver ours
# vmtest disk capable ram size=64M dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || fail "needs the adaptive driver"
tr=/sys/kernel/tracing
cg=/sys/fs/cgroup
sys=$(vblk_capable_writable) || fail "no writable bio-capable disk"
blk=${sys##*/}
dev=/dev/$blk
[ "$(cat "$sys/queue/write_cache")" = "write back" ] ||
	fail "$dev: write through, no flush would be sent"
grep -qw tracefs /proc/mounts || mount -t tracefs nodev $tr || fail "cannot mount tracefs"
grep -qw cgroup2 /proc/mounts || mount -t cgroup2 none $cg || fail "cannot mount cgroup2"
echo +io >$cg/cgroup.subtree_control || fail "cannot enable the io controller"
mkdir -p $cg/vblk_remap || fail "cannot make a cgroup"

vblk_write_mbr "$dev" || fail "$dev: writing the MBR failed"
vblk_settle
blockdev --rereadpt "$dev" || fail "$dev: re-reading the partition table failed"
vblk_wait 10 "${blk}1 after re-reading the partition table" test -b "/dev/${blk}1"
vblk_settle

field() { awk -v f="$1" '{ print $f }' "$2"; }

for p in request bio; do
	vblk_set_path "$sys" $p || fail "cannot switch $dev to $p"

	# Partition: reads and writes to vdX1 are counted on vdX1 and vdX.
	r0=$(field 1 "$sys/${blk}1/stat"); w0=$(field 5 "$sys/${blk}1/stat")
	d0=$(field 1 "$sys/stat")
	dd if="/dev/${blk}1" of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null ||
		fail "$p: reading ${blk}1 failed"
	dd if=/dev/zero of="/dev/${blk}1" bs=4k count=16 seek=64 oflag=direct 2>/dev/null ||
		fail "$p: writing ${blk}1 failed"
	[ "$(field 1 "$sys/${blk}1/stat")" -ge $((r0 + 16)) ] ||
		fail "$p: ${blk}1 counted $(($(field 1 "$sys/${blk}1/stat") - r0)) of 16 reads"
	[ "$(field 5 "$sys/${blk}1/stat")" -ge $((w0 + 16)) ] ||
		fail "$p: ${blk}1 counted $(($(field 5 "$sys/${blk}1/stat") - w0)) of 16 writes"
	[ "$(field 1 "$sys/stat")" -ge $((d0 + 16)) ] || fail "$p: $blk did not count the reads"

	# Flushes: fsync of written data flushes the volatile cache.
	f0=$(field 16 "$sys/stat")
	dd if=/dev/zero of="$dev" bs=4k count=16 seek=1024 conv=fsync 2>/dev/null ||
		fail "$p: buffered write + fsync failed"
	[ "$(field 16 "$sys/stat")" -gt "$f0" ] || fail "$p: no flush counted on $blk"

	# cgroup: I/O from a child is on vdX's row, and on no nameless one.
	sh -c "echo \$\$ >$cg/vblk_remap/cgroup.procs &&
	       dd if=$dev of=/dev/null bs=4k count=16 skip=2048 iflag=direct 2>/dev/null &&
	       dd if=/dev/zero of=$dev bs=4k count=16 seek=2048 oflag=direct 2>/dev/null" ||
		fail "$p: I/O from the cgroup failed"
	grep -q "^$(cat "$sys/dev") " $cg/vblk_remap/io.stat ||
		{ cat $cg/vblk_remap/io.stat; fail "$p: no row for $blk in io.stat"; }
	! grep -q "(unknown)" $cg/vblk_remap/io.stat ||
		{ cat $cg/vblk_remap/io.stat; fail "$p: io.stat has an (unknown) row"; }

	# Tracing: the bio is queued on vdX and, on the request path,
	# remapped from it to the hidden disk.
	echo >$tr/trace
	echo 1 >$tr/events/block/block_bio_queue/enable
	echo 1 >$tr/events/block/block_bio_remap/enable
	dd if="$dev" of=/dev/null bs=4k count=1 skip=1000 iflag=direct 2>/dev/null ||
		fail "$p: reading $dev failed"
	echo 0 >$tr/events/block/block_bio_remap/enable
	echo 0 >$tr/events/block/block_bio_queue/enable
	majmin=$(tr : , <"$sys/dev")
	grep -q "block_bio_queue: $majmin " $tr/trace || fail "$p: no block_bio_queue for $blk"
	if [ $p = request ]; then
		grep -q "block_bio_remap: .* <- ($majmin) " $tr/trace ||
			{ cat $tr/trace; fail "$p: no block_bio_remap from $blk"; }
	fi
	ktap_log "$p: ${blk}1 and $blk statistics, flushes, io.stat and tracing right"
done
rmdir $cg/vblk_remap
exit $KSFT_PASS
