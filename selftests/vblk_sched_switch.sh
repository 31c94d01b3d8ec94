#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# I/O scheduler switches under verified I/O.  On every writable disk, on
# every path it runs (both on a bio-capable disk, the one path under the
# in-tree driver or on a plain disk), the disk's blk-mq queue is switched
# round all the schedulers its queue/scheduler lists (the hidden disk's
# on a bio-capable disk, vdX's own otherwise), VBLK_SCHED_SWITCHES (20)
# times, while fio writes blocks of 4k to 64k at random (direct, libaio,
# 16 in flight) and reads each back as it goes and at the end (crc32c).
# Every switch must take, every fio run must finish in its bound and
# verify with no error, nothing may stay in flight afterwards, and the
# scheduler the disk had is put back.  A null-co disk (reads return
# zeroes) gets the same I/O with the checks only pretended.
#
# The switches run in the background, each once I/O is in flight; fio
# runs again and again until they are done, so the count of switches
# does not depend on how fast the host is, only the bounds of the waits
# do (and they are generous).
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

SWITCHES=${VBLK_SCHED_SWITCHES:-20}
done_flag=/tmp/vblk_sched_switch.done
switcher=
restore=

# sched_file SYS: the queue/scheduler of the disk's blk-mq queue.
sched_file() {
	local h
	if h=$(vblk_hidden "$1"); then
		echo "/sys/block/$h/queue/scheduler"
	else
		echo "$1/queue/scheduler"
	fi
}

# current FILE: the scheduler in use (the one in brackets).
current() {
	sed -n 's/.*\[\([^]]*\)\].*/\1/p' "$1"
}

# rotation FILE: every listed scheduler once, starting after the one in
# use and ending with it, so that each write in turn changes it.
rotation() {
	local s cur after='' before='' seen=0
	cur=$(current "$1")
	for s in $(tr -d '[]' <"$1"); do
		if [ "$s" = "$cur" ]; then
			seen=1
		elif [ $seen = 1 ]; then
			after="$after $s"
		else
			before="$before $s"
		fi
	done
	echo $after $before "$cur"
}

cleanup() {
	[ -n "$switcher" ] && kill "$switcher" 2>/dev/null
	[ -n "$restore" ] && echo "${restore#*=}" >"${restore%%=*}" 2>/dev/null
}
trap cleanup EXIT

# start_switcher FILE: $SWITCHES switches of FILE round its schedulers in
# the background ($switcher); $done_flag appears when all took.
start_switcher() {
	local f=$1 order
	order=$(rotation "$f")
	rm -f $done_flag
	(
		trap - EXIT
		i=0
		while :; do
			for s in $order; do
				[ $i -lt "$SWITCHES" ] || { : >$done_flag; exit 0; }
				kill -0 $$ 2>/dev/null || exit 1	# the test was killed
				vblk_wait 30 "$tag: I/O in flight for switch $i" vblk_busy $inflight
				echo "$s" >"$f" || { echo "$tag: switch $i to $s: write failed"; exit 1; }
				[ "$(current "$f")" = "$s" ] ||
					{ echo "$tag: switch $i to $s: $f reads '$(cat "$f")'"; exit 1; }
				i=$((i + 1))
				sleep 0.05
			done
		done
	) &
	switcher=$!
}

# setup: the disk's queue/scheduler ($f), the scheduler in use ($orig),
# put back after each path and by cleanup.
setup() {
	f=$(sched_file "$sys")
	[ -w "$f" ] || fail "$dev: no $f"
	orig=$(current "$f")
	[ -n "$orig" ] || fail "$dev: no scheduler in use in $f: '$(cat "$f")'"
	set -- $(rotation "$f")
	[ $# -ge 2 ] ||
		fail "$dev: $f lists one scheduler ('$(cat "$f")'): nothing to switch"
	restore="$f=$orig"
}

# run: fio again and again until the switcher has done its switches.
run() {
	vblk_settle
	start_switcher "$f"
	vblk_fio_until $switcher $done_flag 100 "$tag: $SWITCHES scheduler switches" \
		"sched-$p" "$dev" --ioengine=libaio --iodepth=16 --bsrange=4k-64k --size=16M \
		--verify_backlog=64 $verify
	switcher=
	echo "$orig" >"$f" && [ "$(current "$f")" = "$orig" ] ||
		fail "$tag: cannot put $orig back in $f"
	vblk_settle
	ktap_log "$tag: $SWITCHES switches round '$(rotation "$f")' during $vblk_fio_runs fio runs, $how"
}

vblk_each_path setup run
exit $KSFT_PASS
