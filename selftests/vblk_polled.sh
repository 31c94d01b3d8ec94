#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Polled I/O through io_uring (IORING_SETUP_IOPOLL: fio --hipri), direct:
# on every writable disk that keeps its data, on every path it runs, 4k
# random writes with 16 in flight and writes of 64k to 1M (which the
# block layer may split, and then completes by interrupt) with 4 in
# flight, each read back, polled too, and checked (crc32c).  Every run
# must finish in its bound, issue all its I/O and report no error; then
# nothing may be in flight.  On the request path the I/O is reaped from a
# poll queue; on the bio path of a bio-capable disk the driver completes
# polled bios by interrupt, and io_uring's polling must still see them
# complete.
#
# Needs poll queues: the module loaded with poll_queues=1 (or more) and
# a device with at least 2 queues (dev.num-queues=2), for the in-tree
# driver as for ours.  A disk whose queue/io_poll is not 1 fails.
. ./test_common.sh
. ./vblk_lib.sh

MIB=8			# per job
IOS=$((MIB * 256))	# 4k writes of the small job, as many reads

# data_disks: /sys/block/vdX of every writable disk that keeps its data
# (a null-co disk reads zeroes: nothing to verify).
data_disks() {
	local s
	for s in /sys/block/vd*; do
		[ -e "$s/ro" ] && [ "$(cat "$s/ro")" = 0 ] || continue
		[ "$(vblk_class "$(cat "$s/serial" 2>/dev/null)")" = null ] && continue
		echo "$s"
	done
}

# paths_of SYS: the paths to test; "current" under the in-tree driver.
paths_of() {
	if vblk_ours; then vblk_paths "$1"; else echo current; fi
}

# idle SYS: nothing in flight on the disk, nor on its hidden disk.
idle() {
	local f h
	h=$(vblk_hidden "$1") && h=/sys/block/$h/inflight
	for f in "$1/inflight" $h; do
		set -- $(cat "$f")
		[ "$1" = 0 ] && [ "$2" = 0 ] || return 1
	done
}

poll_queues=$(cat /sys/module/virtio_blk/parameters/poll_queues 2>/dev/null)
n=0
for sys in $(data_disks); do
	dev=/dev/${sys##*/}
	vd=${sys##*/}
	orig_path=
	vblk_ours && orig_path=$(cat "$sys/io_path")
	[ "$(cat "$sys/size")" -ge $((4 * MIB * 2048)) ] || fail "$dev: smaller than $((4 * MIB)) MiB"
	# The queues I/O goes to: vdX's own, and on a bio-capable disk the
	# hidden disk's, where the request path sends it.
	for q in "$sys" $(h=$(vblk_hidden "$sys") && echo "/sys/block/$h"); do
		[ "$(cat "$q/queue/io_poll")" = 1 ] ||
			fail "${q##*/}: queue/io_poll is $(cat "$q/queue/io_poll"), no poll queue" \
			     "(module parameter poll_queues=${poll_queues:-?}; needs poll_queues=1" \
			     "and a device with dev.num-queues=2 or more)"
	done
	for p in $(paths_of "$sys"); do
		tag="$vd $p"
		[ "$p" = current ] || vblk_set_path "$sys" "$p" || fail "$tag: cannot switch the path"
		vblk_settle
		vblk_fio_verified 100 "polled-small-$p" "$dev" --ioengine=io_uring --hipri \
			--iodepth=16 --size=${MIB}M
		grep -q "issued rwts: total=$IOS,$IOS," /tmp/vblk_fio.out ||
			{ cat /tmp/vblk_fio.out; fail "$tag: small: not $IOS writes and reads"; }
		vblk_fio_verified 100 "polled-large-$p" "$dev" --ioengine=io_uring --hipri \
			--iodepth=4 --bsrange=64k-1m --offset=$((2 * MIB))M --size=$((2 * MIB))M
		vblk_settle
		vblk_wait 30 "$tag: nothing in flight" idle "$sys"
		ktap_log "$tag: polled: $IOS 4k writes, $((2 * MIB)) MiB in 64k-1M writes, all read back intact"
		n=$((n + 1))
	done
	[ -z "$orig_path" ] || vblk_set_path "$sys" "$orig_path" ||
		fail "$dev: cannot put the path back to $orig_path"
done
[ $n -gt 0 ] || fail "no writable disk that keeps its data"
exit $KSFT_PASS
