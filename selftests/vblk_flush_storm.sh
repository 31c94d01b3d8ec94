#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A storm of flushes: on every writable disk that keeps its data, on
# every path it runs, 8 fio jobs at once each write 4k blocks at random
# into their own 128 KiB and make every write durable before the next:
# buffered with fsync(), buffered with O_SYNC, direct with fdatasync(),
# direct with O_SYNC.  Each run must finish in its bound, issue all its
# writes, read them all back intact (crc32c) and report no error.  When
# queue/write_cache says "write back", every run must move the disk's
# flush counter (field 16 of /sys/block/vdX/stat, "flush requests
# completed"): the flushes reached the disk and were counted on it.  If
# cache_type can be changed (VIRTIO_BLK_F_CONFIG_WCE), the same runs are
# made in "write through" mode too, where the block layer drops every
# flush before the driver, so the counter must not move (as under the
# in-tree driver); then the mode is put back.
. ./test_common.sh
. ./vblk_lib.sh

JOBS=8
KIB=128			# per job
WRITES=$((JOBS * KIB / 4))
VARIANTS="buffered-fsync:--direct=0,--fsync=1 buffered-osync:--direct=0,--sync=1
	  direct-fdatasync:--direct=1,--fdatasync=1 direct-osync:--direct=1,--sync=1"
restore=

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

# flushes SYS: flush requests completed (stat field 16).
flushes() {
	set -- $(cat "$1/stat")
	[ $# -ge 16 ] || fail "$1/stat has $# fields, no flush counter"
	echo "${16}"
}

cleanup() {
	[ -n "$restore" ] && echo "${restore#*=}" >"${restore%%=*}" 2>/dev/null
}
trap cleanup EXIT

n=0
for sys in $(data_disks); do
	dev=/dev/${sys##*/}
	orig_path=
	vblk_ours && orig_path=$(cat "$sys/io_path")
	[ "$(cat "$sys/size")" -ge $((JOBS * 2048)) ] || fail "$dev: smaller than $JOBS MiB"
	ct=$(cat "$sys/cache_type")
	case $ct in
	"write back") other="write through" ;;
	"write through") other="write back" ;;
	*) fail "$dev: cache_type reads '$ct'" ;;
	esac
	modes=$ct
	if { echo "$other" >"$sys/cache_type"; } 2>/dev/null; then
		restore="$sys/cache_type=$ct"
		modes="write back/write through"
	else
		ktap_log "${dev#/dev/}: cache_type is read-only, only '$ct' tested"
	fi
	for p in $(paths_of "$sys"); do
		[ "$p" = current ] || vblk_set_path "$sys" "$p" ||
			fail "${dev#/dev/} $p: cannot switch the path"
		IFS=/
		for m in $modes; do
			unset IFS
			tag="${dev#/dev/} $p, $m"
			[ "$modes" = "$ct" ] || echo "$m" >"$sys/cache_type" ||
				fail "$tag: cannot set cache_type"
			[ "$(cat "$sys/queue/write_cache")" = "$m" ] ||
				fail "$tag: queue/write_cache reads '$(cat "$sys/queue/write_cache")'"
			moved=
			for v in $VARIANTS; do
				name=${v%%:*}
				vblk_settle
				f0=$(flushes "$sys")
				vblk_fio_verified 100 "$name" "$dev" --ioengine=psync --bs=4k \
					--numjobs=$JOBS --size=${KIB}k --offset_increment=1M \
					--group_reporting $(echo "${v#*:}" | tr , ' ')
				f1=$(flushes "$sys")
				grep -q "issued rwts: total=$WRITES,$WRITES," /tmp/vblk_fio.out ||
					{ cat /tmp/vblk_fio.out; fail "$tag, $name: not $WRITES writes and reads"; }
				! grep -q "err= *[1-9]" /tmp/vblk_fio.out ||
					{ cat /tmp/vblk_fio.out; fail "$tag, $name: a job reported an error"; }
				if [ "$m" = "write back" ] && [ "$f1" -le "$f0" ]; then
					fail "$tag, $name: flush counter stayed at $f0"
				elif [ "$m" = "write through" ] && [ "$f1" != "$f0" ]; then
					fail "$tag, $name: $((f1 - f0)) flushes reached a disk without a write cache"
				fi
				moved="$moved $name +$((f1 - f0))"
			done
			vblk_settle
			vblk_wait 30 "$tag: nothing in flight" idle "$sys"
			ktap_log "$tag: $JOBS jobs x $((KIB / 4)) synced 4k writes verified; flushes:$moved"
			IFS=/
		done
		unset IFS
		[ "$modes" = "$ct" ] || echo "$ct" >"$sys/cache_type" ||
			fail "${dev#/dev/}: cannot put cache_type '$ct' back"
		n=$((n + 1))
	done
	restore=
	[ -z "$orig_path" ] || vblk_set_path "$sys" "$orig_path" ||
		fail "$dev: cannot put the path back to $orig_path"
done
[ $n -gt 0 ] || fail "no writable disk that keeps its data"
exit $KSFT_PASS
