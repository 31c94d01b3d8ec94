#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Every sysfs attribute of a disk read, and every queue attribute written
# back, under verified I/O (the pattern of blktests block/021).  On every
# writable disk, on every path it runs, while fio writes and verifies:
# each file of /sys/block/vdX and of its queue/ (and of the hidden disk's
# queue/ on a bio-capable disk) must read, and each writable one of those
# queue/ directories must take back what it read and read the same
# afterwards (the scheduler: the one in use).  Nothing may oops or warn
# (the runner fails the guest then).
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

done_flag=/tmp/vblk_sysfs_rw.done
counts=/tmp/vblk_sysfs_rw.counts

# queues SYS: the queue/ directories of the disk, the hidden disk's too.
queues() {
	local h
	echo "$1/queue"
	h=$(vblk_hidden "$1") && echo "/sys/block/$h/queue"
}

# value FILE: what FILE holds, the scheduler in use for a scheduler list.
value() {
	case $1 in
	*/scheduler) sed -n 's/.*\[\([^]]*\)\].*/\1/p' "$1" ;;
	*) cat "$1" ;;
	esac
}

# read_write SYS: read every attribute, write back the queue ones, and
# put the counts in $counts; says what went wrong and fails at the first
# problem.
read_write() {
	local f q v n=0 w=0
	# Root may open any file: the mode says which are readable, writable.
	for f in $(find "$1/" $(queues "$1" | sed 's|$|/|') -maxdepth 1 -type f -perm -0400 |
		   sort); do
		cat "$f" >/dev/null || { echo "$tag: reading $f failed"; return 1; }
		n=$((n + 1))
	done
	for q in $(queues "$1"); do
		for f in $(find "$q/" -maxdepth 1 -type f -perm -0200 | sort); do
			# The block layer refuses io_poll writes (EINVAL) on a
			# queue that cannot poll, whatever the driver.
			[ "${f##*/}" = io_poll ] && [ "$(cat "$f")" = 0 ] && continue
			v=$(value "$f")
			echo "$v" >"$f" || { echo "$tag: writing '$v' back to $f failed"; return 1; }
			[ "$(value "$f")" = "$v" ] ||
				{ echo "$tag: $f reads '$(value "$f")' after '$v' was written back"; return 1; }
			w=$((w + 1))
		done
	done
	echo "$n attributes read, $w written back" >$counts
}

# run: the attribute pass in the background, once fio has I/O in flight;
# fio again and again until it is done.
run() {
	rm -f $done_flag $counts
	(
		trap - EXIT
		vblk_wait 30 "$tag: I/O in flight" vblk_busy $inflight
		read_write "$sys" && : >$done_flag
	) &
	vblk_fio_until $! $done_flag 100 "$tag: the attribute pass" "sysfs-$p" "$dev" \
		--ioengine=libaio --iodepth=16 --bsrange=4k-64k --size=16M --verify_backlog=64 $verify
	ktap_log "$tag: $(cat $counts) during $vblk_fio_runs fio runs, $how"
}

vblk_each_path : run
exit $KSFT_PASS
