#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Read-only by ioctl (BLKROSET, blockdev --setro) on a writable disk, on
# every path it runs.  Once set, BLKROGET and /sys/block/vdX/ro say 1;
# every write is refused with EPERM before it reaches the disk (a direct
# dd, a buffered dd with fsync, a direct io_uring fio job) and the disk's
# count of completed writes does not move; reads still work and return
# what was there before.  On a bio-capable disk the flag holds across a
# switch to the other path.  After blockdev --setrw, writes work again
# and read back.  This is what the in-tree driver does (the block layer
# refuses the writes, not the driver).  A null-co disk (reads return
# zeroes) is tested the same, without comparing data.
#
# Guests: the in-tree driver, and ours with a plain disk, a bio-capable
# one and a null-co one whose every request takes 10 ms (I/O stays in
# flight while things change).
# vmtest guest blk-stock --driver stock
# vmtest disk r ram size=64M dev.num-queues=2
# vmtest disk n null size=64M latency-ns=10000000
# vmtest guest blk-ours --driver ours
# vmtest disk plain ram size=64M dev.num-queues=2 dev.bio=off
# vmtest disk capable ram size=64M dev.num-queues=2 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
# vmtest disk n null size=64M latency-ns=10000000 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

KIB=256
ro_dev=

# writes SYS: writes completed (stat field 5).
writes() {
	set -- $(cat "$1/stat")
	echo "$5"
}

cleanup() {
	[ -n "$ro_dev" ] && blockdev --setrw "$ro_dev" 2>/dev/null
}
trap cleanup EXIT

# refused WHAT CMD...: CMD, a write, must fail with EPERM, as under the
# in-tree driver (the block layer's write_iter refuses it).
refused() {
	local what=$1
	shift
	"$@" >/tmp/vblk_ro_toggle.out 2>&1 &&
		{ cat /tmp/vblk_ro_toggle.out; fail "$tag: $what succeeded on a read-only disk"; }
	grep -q "Operation not permitted" /tmp/vblk_ro_toggle.out ||
		{ cat /tmp/vblk_ro_toggle.out; fail "$tag: $what failed, but not with EPERM"; }
	refusals="$refusals, $what"
}

# readonly_now: every way of writing is refused, the disk counts no
# write, reads return the pattern.
readonly_now() {
	local w0
	refusals=
	[ "$(blockdev --getro "$dev")" = 1 ] || fail "$tag: BLKROGET says $(blockdev --getro "$dev")"
	[ "$(cat "$sys/ro")" = 1 ] || fail "$tag: $sys/ro reads $(cat "$sys/ro")"
	vblk_settle
	w0=$(writes "$sys")
	refused "direct dd" dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct
	refused "buffered dd" dd if=/dev/zero of="$dev" bs=4k count=1 conv=fsync
	refused "io_uring fio" fio --name=ro --filename="$dev" --rw=write --bs=4k \
		--size=64k --direct=1 --ioengine=io_uring
	vblk_settle
	[ "$(writes "$sys")" = "$w0" ] ||
		fail "$tag: $(($(writes "$sys") - w0)) writes completed on a read-only disk"
	dd if="$dev" of=/tmp/vblk_ro_toggle.got bs=64k count=$((KIB / 64)) iflag=direct 2>/dev/null ||
		fail "$tag: reading a read-only disk failed"
	[ "$null" = 1 ] || cmp -s /tmp/vblk_ro_toggle.got /tmp/vblk_ro_toggle.pat ||
		fail "$tag: read-only disk does not read back what was written before"
}

# run: read-only, on this path and on the disk's others, then writable
# again.
run() {
	local q paths w0
	paths=$(vblk_test_paths "$sys")
	dd if=/dev/urandom of=/tmp/vblk_ro_toggle.pat bs=64k count=$((KIB / 64)) 2>/dev/null
	dd if=/tmp/vblk_ro_toggle.pat of="$dev" bs=64k oflag=direct 2>/dev/null ||
		fail "$tag: writing the pattern failed"

	blockdev --setro "$dev" || fail "$tag: blockdev --setro failed"
	ro_dev=$dev
	readonly_now
	ktap_log "$tag: read-only: reads work, EPERM for ${refusals#, }"

	# The flag is the disk's, whichever path serves it.
	for q in $paths; do
		[ "$q" = "$p" ] && continue
		tag="$vd $p, then $q"
		vblk_set_path "$sys" "$q" || fail "$tag: cannot switch the path while read-only"
		readonly_now
		vblk_set_path "$sys" "$p" || fail "$tag: cannot switch back to $p"
		tag="$vd $p"
		ktap_log "$tag: still read-only on $q"
	done

	blockdev --setrw "$dev" || fail "$tag: blockdev --setrw failed"
	ro_dev=
	[ "$(blockdev --getro "$dev")" = 0 ] || fail "$tag: BLKROGET says $(blockdev --getro "$dev") after --setrw"
	[ "$(cat "$sys/ro")" = 0 ] || fail "$tag: $sys/ro reads $(cat "$sys/ro") after --setrw"
	dd if=/dev/urandom of=/tmp/vblk_ro_toggle.pat bs=64k count=$((KIB / 64)) 2>/dev/null
	w0=$(writes "$sys")
	dd if=/tmp/vblk_ro_toggle.pat of="$dev" bs=64k oflag=direct 2>/tmp/vblk_ro_toggle.out ||
		{ cat /tmp/vblk_ro_toggle.out; fail "$tag: direct write after --setrw failed"; }
	dd if=/dev/zero of="$dev" bs=4k count=1 seek=$((KIB / 4)) conv=fsync 2>/tmp/vblk_ro_toggle.out ||
		{ cat /tmp/vblk_ro_toggle.out; fail "$tag: buffered write after --setrw failed"; }
	[ "$(writes "$sys")" -ge $((w0 + KIB / 64 + 1)) ] ||
		fail "$tag: $(($(writes "$sys") - w0)) writes completed after --setrw, want $((KIB / 64 + 1))"
	dd if="$dev" of=/tmp/vblk_ro_toggle.got bs=64k count=$((KIB / 64)) iflag=direct 2>/dev/null ||
		fail "$tag: read after --setrw failed"
	[ "$null" = 1 ] || cmp -s /tmp/vblk_ro_toggle.got /tmp/vblk_ro_toggle.pat ||
		fail "$tag: data written after --setrw does not read back"
	vblk_settle
	ktap_log "$tag: writable again: writes work and read back"
}

vblk_each_path : run
exit $KSFT_PASS
