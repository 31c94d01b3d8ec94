#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A storm of flushes: on every writable disk, on every path it runs, 8
# fio jobs at once each write 4k blocks at random into their own 64 KiB
# (16 KiB on a null-co disk, whose writes and flushes may be slow by
# design, and whose checks are only pretended: it reads zeroes) and make
# every write durable before the next: buffered with fsync(), buffered
# with O_SYNC, direct with fdatasync(), direct with O_SYNC.  Each run
# must finish in its bound, issue all its writes, read them all back
# intact (crc32c) and report no error.  When queue/write_cache says
# "write back", every run must move the disk's flush counter (field 16 of
# /sys/block/vdX/stat, "flush requests completed"): the flushes reached
# the disk and were counted on it.  If cache_type can be changed
# (VIRTIO_BLK_F_CONFIG_WCE), runs are made in "write through" mode too
# (buffered with fsync(), direct with O_SYNC), where the block layer
# drops every flush before the driver, so the counter must not move (as
# under the in-tree driver); then the mode is put back.
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

JOBS=8
VARIANTS="buffered-fsync:--direct=0,--fsync=1 buffered-osync:--direct=0,--sync=1
	  direct-fdatasync:--direct=1,--fdatasync=1 direct-osync:--direct=1,--sync=1"
# Without a write cache no flush reaches the driver: fewer runs.
VARIANTS_WT="buffered-fsync:--direct=0,--fsync=1 direct-osync:--direct=1,--sync=1"
restore=

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

# setup: the size of each job ($KIB), the cache modes to test ($modes,
# "/"-separated) and the one the disk had ($ct, put back by run and by
# cleanup).
setup() {
	local other
	KIB=64			# per job
	[ "$null" = 1 ] && KIB=16
	WRITES=$((JOBS * KIB / 4))
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
		ktap_log "$vd: cache_type is read-only, only '$ct' tested"
	fi
}

# storm MODE: every variant in cache mode MODE, each moving the flush
# counter (write back) or not (write through).
storm() {
	local m="$1" t="$tag, $1" moved= variants="$VARIANTS" v name f0 f1
	[ "$modes" = "$ct" ] || echo "$m" >"$sys/cache_type" ||
		fail "$t: cannot set cache_type"
	[ "$(cat "$sys/queue/write_cache")" = "$m" ] ||
		fail "$t: queue/write_cache reads '$(cat "$sys/queue/write_cache")'"
	[ "$m" = "write back" ] || variants=$VARIANTS_WT
	for v in $variants; do
		name=${v%%:*}
		f0=$(flushes "$sys")
		vblk_fio_verified 100 "$name" "$dev" --ioengine=psync --bs=4k \
			--thread --numjobs=$JOBS --size=${KIB}k --offset_increment=1M \
			--group_reporting $(echo "${v#*:}" | tr , ' ') $verify
		f1=$(flushes "$sys")
		grep -q "issued rwts: total=$WRITES,$WRITES," /tmp/vblk_fio.out ||
			{ cat /tmp/vblk_fio.out; fail "$t, $name: not $WRITES writes and reads"; }
		! grep -q "err= *[1-9]" /tmp/vblk_fio.out ||
			{ cat /tmp/vblk_fio.out; fail "$t, $name: a job reported an error"; }
		if [ "$m" = "write back" ] && [ "$f1" -le "$f0" ]; then
			fail "$t, $name: flush counter stayed at $f0"
		elif [ "$m" = "write through" ] && [ "$f1" != "$f0" ]; then
			fail "$t, $name: $((f1 - f0)) flushes reached a disk without a write cache"
		fi
		moved="$moved $name +$((f1 - f0))"
	done
	vblk_settle
	vblk_wait 30 "$t: nothing in flight" vblk_idle $inflight
	ktap_log "$t: $JOBS jobs x $((KIB / 4)) synced 4k writes, $how; flushes:$moved"
}

run() {
	local m
	IFS=/
	for m in $modes; do
		unset IFS
		storm "$m"
		IFS=/
	done
	unset IFS
	[ "$modes" = "$ct" ] || echo "$ct" >"$sys/cache_type" ||
		fail "$vd: cannot put cache_type '$ct' back"
}

vblk_each_path setup run
exit $KSFT_PASS
