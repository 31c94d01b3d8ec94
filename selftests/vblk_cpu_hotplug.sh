#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# CPU hotplug under verified I/O.  On every writable disk that keeps its
# data, on every path it runs, the CPUs other than CPU0 are taken offline
# and brought back online, all together, VBLK_HOTPLUG_CYCLES (20) times,
# each state held 0.1 s, while fio runs 2 jobs of 4k random writes with
# 32 in flight each (direct, libaio), every block read back and checked
# (crc32c) as it goes and at the end.  A queue whose CPUs all go offline
# must have its I/O completed or moved elsewhere: every fio run must
# finish in its bound with no error.  Afterwards every CPU is online and
# nothing is in flight on the disk (nor on its hidden disk).
#
# Needs a guest with 2 or more CPUs (tools/vmrun --smp).
. ./test_common.sh
. ./vblk_lib.sh

CYCLES=${VBLK_HOTPLUG_CYCLES:-20}
HOLD=0.1
CPUS=/sys/devices/system/cpu
done_flag=/tmp/vblk_cpu_hotplug.done
toggler=

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

# all_online: every CPU that can go offline is online.
all_online() {
	local c
	for c in $cpus; do
		[ "$(cat $CPUS/$c/online)" = 1 ] || return 1
	done
}

# set_cpus 0|1: take the CPUs offline or bring them online, and check.
set_cpus() {
	local c
	for c in $cpus; do
		echo "$1" >$CPUS/$c/online || { echo "$c: writing $1 to online failed"; return 1; }
		[ "$(cat $CPUS/$c/online)" = "$1" ] ||
			{ echo "$c: online reads $(cat $CPUS/$c/online) after writing $1"; return 1; }
	done
}

cleanup() {
	local c
	[ -n "$toggler" ] && kill "$toggler" 2>/dev/null
	for c in $cpus; do
		echo 1 >$CPUS/$c/online 2>/dev/null
	done
}
trap cleanup EXIT

# start_toggler: $CYCLES offline/online cycles in the background
# ($toggler); $done_flag appears when all took.
start_toggler() {
	rm -f $done_flag
	(
		trap - EXIT
		i=0
		while [ $i -lt "$CYCLES" ]; do
			set_cpus 0 || exit 1
			sleep $HOLD
			set_cpus 1 || exit 1
			sleep $HOLD
			i=$((i + 1))
		done
		: >$done_flag
	) &
	toggler=$!
}

cpus=
for c in $CPUS/cpu[0-9]*; do
	[ "${c##*/}" = cpu0 ] && continue
	[ -e "$c/online" ] && cpus="$cpus ${c##*/}"
done
[ -n "$cpus" ] || fail "the guest has $(grep -c ^processor /proc/cpuinfo) CPU(s) and none" \
	"but CPU0: needs --smp 2 or more"
vblk_wait 30 "every CPU online at the start" all_online
ktap_log "CPUs taken offline and online:$cpus (of $(grep -c ^processor /proc/cpuinfo))"

n=0
for sys in $(data_disks); do
	dev=/dev/${sys##*/}
	vd=${sys##*/}
	orig_path=
	vblk_ours && orig_path=$(cat "$sys/io_path")
	[ "$(cat "$sys/size")" -ge $((16 * 2048)) ] || fail "$dev: smaller than 16 MiB"
	for p in $(paths_of "$sys"); do
		tag="$vd $p"
		[ "$p" = current ] || vblk_set_path "$sys" "$p" || fail "$tag: cannot switch the path"
		vblk_settle
		start_toggler
		runs=0
		t0=$(now)
		while [ ! -e $done_flag ] || [ $runs = 0 ]; do
			kill -0 $toggler 2>/dev/null || [ -e $done_flag ] ||
				fail "$tag: a CPU hotplug step failed after $runs fio runs"
			[ $(($(now) - t0)) -le 100 ] ||
				fail "$tag: $CYCLES hotplug cycles not done in 100 s ($runs fio runs)"
			vblk_fio_verified 100 "hotplug-$p" "$dev" --ioengine=libaio --iodepth=32 \
				--numjobs=2 --size=4M --offset_increment=8M --group_reporting \
				--verify_backlog=128
			! grep -q "err= *[1-9]" /tmp/vblk_fio.out ||
				{ cat /tmp/vblk_fio.out; fail "$tag: a job reported an error"; }
			runs=$((runs + 1))
		done
		wait $toggler || fail "$tag: a CPU hotplug step failed"
		toggler=
		all_online || fail "$tag: not every CPU is online after the cycles"
		vblk_settle
		vblk_wait 30 "$tag: nothing in flight" idle "$sys"
		ktap_log "$tag: $CYCLES offline/online cycles during $runs verified fio runs"
		n=$((n + 1))
	done
	[ -z "$orig_path" ] || vblk_set_path "$sys" "$orig_path" ||
		fail "$dev: cannot put the path back to $orig_path"
done
[ $n -gt 0 ] || fail "no writable disk that keeps its data"
exit $KSFT_PASS
