#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# CPU hotplug under verified I/O.  On every writable disk, on every path
# it runs, the CPUs other than CPU0 are taken offline and brought back
# online, all together, VBLK_HOTPLUG_CYCLES (20) times, each state held
# at least 0.1 s, while fio runs 2 jobs of 4k random writes with 32 in
# flight each (direct, libaio), every block read back and checked
# (crc32c) as it goes and at the end.  fio is moved onto those CPUs
# before they go, so that their queues have I/O in flight then.  A queue
# whose CPUs all go offline must have its I/O completed or moved
# elsewhere: fio pauses 300 ms after every 100 ms of I/O, and waits for
# all its I/O before each pause (thinktime), so with the CPUs offline
# the disk must be seen idle (a completion lost with a CPU's interrupt
# would at best come back with the CPU, and hold fio until then).  Every
# fio run must finish in its bound with no error.  Afterwards every CPU
# is online and nothing is in flight on the disk (nor on its hidden
# disk).  A null-co disk (which reads zeroes) gets the same I/O with the
# checks only pretended (fio --verify=null); with a latency
# (latency-ns=10000000) its requests are still in flight when a CPU
# goes, which I/O to a RAM disk hardly ever is.  udev's events are
# held until the end (its probes after each fio run would be slow I/O on
# such a disk).
#
# Per-CPU queues need as many default queues as CPUs: with poll_queues=1
# and 2 CPUs, the one default queue serves both and its interrupt just
# moves to CPU0.
#
# Needs a guest with 2 or more CPUs (tools/vmrun --smp).
#
# Under ours the three disks make five disk paths (the plain one on
# request, the other two on both paths), the null-co ones slow by
# design: well over the default 120 s under emulation on a busy host.
# vmtest timeout 300
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

CYCLES=${VBLK_HOTPLUG_CYCLES:-20}
HOLD=0.1
CPUS=/sys/devices/system/cpu
done_flag=/tmp/vblk_cpu_hotplug.done
toggler=

# all_online: every CPU that can go offline is online.
all_online() {
	local c v
	for c in $cpus; do
		read -r v <$CPUS/$c/online && [ "$v" = 1 ] || return 1
	done
}

# set_cpus 0|1: take the CPUs offline or bring them online, and check.
set_cpus() {
	local c v
	for c in $cpus; do
		echo "$1" >$CPUS/$c/online || { echo "$c: writing $1 to online failed"; return 1; }
		read -r v <$CPUS/$c/online
		[ "$v" = "$1" ] || { echo "$c: online reads $v after writing $1"; return 1; }
	done
}

cleanup() {
	local c
	[ -n "$toggler" ] && kill "$toggler" 2>/dev/null
	for c in $cpus; do
		echo 1 >$CPUS/$c/online 2>/dev/null
	done
	vblk_udev_release
}
trap cleanup EXIT

# pin_fio: move fio, and this shell that starts it again, onto the CPUs
# that go offline, so that they have I/O in flight on their queues when
# they do (the scheduler would take its time to spread fio again after
# they come back; the kernel moves them off a CPU that goes).
pin_fio() {
	local pid
	for pid in $$ $(pidof fio); do
		taskset -p "$mask" "$pid" >/dev/null 2>&1
	done
}

# state SYS: what is in flight and what fio waits for, for a failure.
state() {
	local h p
	for p in $(pidof fio); do
		echo "fio $p: $(vblk_proc_state "$p") in $(cat "/proc/$p/wchan")"
	done
	echo "${1##*/} inflight $(echo $(cat "$1/inflight"))"
	h=$(vblk_hidden "$1") && echo "$h inflight $(echo $(cat /sys/block/$h/inflight))"
	cat /sys/kernel/debug/virtio_blk/${1##*/}/queues 2>/dev/null
	grep virtio /proc/interrupts
}

# start_toggler: $CYCLES offline/online cycles in the background
# ($toggler); $done_flag appears when all took.  Each starts once I/O is
# in flight; once the CPUs are offline, the disk must be seen idle: fio
# waits for all its I/O before each pause (thinktime), so the I/O that
# was in flight on the queues of the CPUs that went away must complete
# while they are away.  The CPUs come back even when that fails, so that
# the report shows what was stuck.
start_toggler() {
	rm -f $done_flag
	(
		trap '[ -e $done_flag ] || state "$sys"
		      set_cpus 1 >/dev/null 2>&1' EXIT
		i=0
		while [ $i -lt "$CYCLES" ]; do
			kill -0 $$ 2>/dev/null || exit 1	# the test was killed
			pin_fio
			sleep $HOLD
			vblk_wait 30 "$tag, cycle $i: I/O in flight" vblk_busy $inflight
			set_cpus 0 || exit 1
			sleep $HOLD
			vblk_wait 30 "$tag, cycle $i: the I/O in flight when$cpus went offline to complete" \
				vblk_idle $inflight
			set_cpus 1 || exit 1
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
mask=0
for c in $cpus; do
	mask=$((mask | 1 << ${c#cpu}))
done
mask=$(printf %x $mask)
ktap_log "CPUs taken offline and online:$cpus (of $(grep -c ^processor /proc/cpuinfo))"

# udev would probe a disk each time fio closes it, slow I/O on a slow
# disk: its events wait until the end.
vblk_udev_hold 60 "before the cycles"

# setup: MiB per fio job ($mib).
setup() {
	mib=8
	[ "$null" = 1 ] && mib=4	# slow by design
	[ "$(cat "$sys/size")" -ge $((2 * mib * 2048)) ] || fail "$dev: smaller than $((2 * mib)) MiB"
}

# run: fio again and again until the toggler has done its cycles.
run() {
	start_toggler
	vblk_fio_until $toggler $done_flag 100 "$tag: $CYCLES CPU hotplug cycles" \
		"hotplug-$p" "$dev" --ioengine=libaio --iodepth=32 --numjobs=2 --size=${mib}M \
		--offset_increment=${mib}M --group_reporting --verify_backlog=128 \
		--thinktime_iotime=100ms --thinktime=300ms $verify
	toggler=
	all_online || fail "$tag: not every CPU is online after the cycles"
	ktap_log "$tag: $CYCLES offline/online cycles during $vblk_fio_runs fio runs, $how"
}

vblk_each_path setup run
# Every close of a disk fio wrote is an event udev held: they are all
# handled before the next test starts.
if [ "$VBLK_UDEV" = 1 ]; then
	vblk_udev_release
	vblk_udev_settle 120 "the events held during the test"
fi
exit $KSFT_PASS
