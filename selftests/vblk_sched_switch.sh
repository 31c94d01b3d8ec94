#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# I/O scheduler switches under verified I/O.  On every writable disk that
# keeps its data, on every path it runs (both on a bio-capable disk, the
# one path under the in-tree driver or on a plain disk), the disk's blk-mq
# queue is switched round all the schedulers its queue/scheduler lists
# (the hidden disk's on a bio-capable disk, vdX's own otherwise), at
# least VBLK_SCHED_SWITCHES (24) times, while fio writes blocks of 4k to
# 64k at random (direct, libaio, 16 in flight) and reads each back as it
# goes and at the end (crc32c).  Every switch must take, every fio run
# must finish in its bound and verify with no error, nothing may stay in
# flight afterwards, and the scheduler the disk had is put back.
#
# The switches run in the background; fio runs again and again until
# they are done, so the count of switches does not depend on how fast
# the host is, only the bounds of the waits do (and they are generous).
. ./test_common.sh
. ./vblk_lib.sh

SWITCHES=${VBLK_SCHED_SWITCHES:-24}
done_flag=/tmp/vblk_sched_switch.done
switcher=
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

now() { cut -d. -f1 /proc/uptime; }

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
	local s cur after= before= seen=0
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
				echo "$s" >"$f" || { echo "switch $i to $s: write failed"; exit 1; }
				[ "$(current "$f")" = "$s" ] ||
					{ echo "switch $i to $s: $f reads '$(cat "$f")'"; exit 1; }
				i=$((i + 1))
				sleep 0.05
			done
		done
	) &
	switcher=$!
}

n=0
for sys in $(data_disks); do
	dev=/dev/${sys##*/}
	orig_path=
	vblk_ours && orig_path=$(cat "$sys/io_path")
	f=$(sched_file "$sys")
	[ -w "$f" ] || fail "$dev: no $f"
	orig=$(current "$f")
	[ -n "$orig" ] || fail "$dev: no scheduler in use in $f: '$(cat "$f")'"
	[ "$(echo $(rotation "$f") | wc -w)" -ge 2 ] ||
		fail "$dev: $f lists one scheduler ('$(cat "$f")'): nothing to switch"
	restore="$f=$orig"
	for p in $(paths_of "$sys"); do
		tag="${dev#/dev/} $p"
		[ "$p" = current ] || vblk_set_path "$sys" "$p" || fail "$tag: cannot switch the path"
		vblk_settle
		start_switcher "$f"
		runs=0
		t0=$(now)
		while [ ! -e $done_flag ] || [ $runs = 0 ]; do
			kill -0 $switcher 2>/dev/null || [ -e $done_flag ] ||
				fail "$tag: a scheduler switch failed after $runs fio runs"
			[ $(($(now) - t0)) -le 100 ] ||
				fail "$tag: $SWITCHES scheduler switches not done in 100 s ($runs fio runs)"
			vblk_fio_verified 100 "sched-$p" "$dev" --ioengine=libaio --iodepth=16 \
				--bsrange=4k-64k --size=8M --verify_backlog=64
			runs=$((runs + 1))
		done
		wait $switcher || fail "$tag: a scheduler switch failed"
		switcher=
		echo "$orig" >"$f" && [ "$(current "$f")" = "$orig" ] ||
			fail "$tag: cannot put $orig back in $f"
		vblk_settle
		vblk_wait 30 "$tag: nothing in flight" idle "$sys"
		ktap_log "$tag: $SWITCHES switches round '$(rotation "$f")' during $runs verified fio runs"
		n=$((n + 1))
	done
	restore=
	[ -z "$orig_path" ] || vblk_set_path "$sys" "$orig_path" ||
		fail "$dev: cannot put the path back to $orig_path"
done
[ $n -gt 0 ] || fail "no writable disk that keeps its data"
exit $KSFT_PASS
