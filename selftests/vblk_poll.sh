#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Poll queues (poll_queues=N) on the request path, and polled submissions
# on the bio path.  Needs the module loaded with poll_queues >= 1 on a
# device with more than one queue, and debugfs (the runner's init mounts
# it).
#
# What it relies on:
# - The hidden blk-mq disk (GENHD_FL_HIDDEN) has no /dev node but is a
#   registered block device: /sys/block/virtblkN with hidden = 1, a child
#   of the same virtio device as the visible vdX, so both are listed in
#   /sys/bus/virtio/devices/virtioM/block/.  N is the vdX index (vda is
#   virtblk0).  Its debugfs directory, /sys/kernel/debug/block/virtblkN,
#   has one hctxK per virtqueue, and "type" names the map ("poll").
# - virtio-pci gives a virtqueue without a callback no MSI-X vector, so a
#   poll queue has no line in /proc/interrupts and a request on it can
#   only complete when something calls ->poll.  The default queues are
#   "virtioM-req.K" there.
#
# Evidence that polled I/O completes by polling: fio (io_uring, hipri,
# i.e. IORING_SETUP_IOPOLL) writes and verifies on the request path
# while the default queues' interrupt count stays (almost) flat; the same
# job without hipri, and the hipri job on the bio path (which clears
# REQ_POLLED and completes by interrupt), move it by at least half the
# I/Os.  Those two run one I/O at a time, so that each completion needs
# an interrupt of its own however fast the host answers (with more in
# flight, a busy host completes several per interrupt).  udev is held
# during these runs (vblk_udev_hold): the close of a disk opened for
# writing makes udev probe it, which is I/O by interrupt.  Then, with
# the path switched back and forth during polled fio jobs, every job
# verifies and nothing stays in flight.
#
# One poll queue next to the default one (2 vCPUs cap the queues at 2).
# vmtest guest ours-poll --driver ours --module-param poll_queues=1
# vmtest disk d1 ram size=64M dev.num-queues=3 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
# vmtest run data_integrity
. ./test_common.sh
. ./vblk_lib.sh

vblk_require ours
npoll=$(vblk_modparam poll_queues) || fail "the module was loaded without poll_queues="
[ "$npoll" -ge 1 ] || fail "poll_queues=$npoll: nothing to test"
dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")
vd=${dev#/dev/}
vdev=$(basename "$(readlink -f "$sys/device")")
case $vdev in virtio*) ;; *) fail "$dev: parent $vdev is not a virtio device" ;; esac
udev=0
[ "$VBLK_UDEV" = 1 ] && command -v udevadm >/dev/null && udev=1
trap vblk_udev_release EXIT
mb=8			# MiB written and verified per fio job
ios=$((mb * 256 * 2))	# 4k writes plus verify reads

# The hidden disk: the other disk of the same virtio device.
hidden=
for d in /sys/bus/virtio/devices/"$vdev"/block/*; do
	[ "${d##*/}" = "$vd" ] && continue
	[ -n "$hidden" ] && fail "$vdev has more than two disks: $hidden ${d##*/}"
	hidden=${d##*/}
done
[ -n "$hidden" ] || fail "$vdev: no hidden disk next to $vd"
# vdX index: vda 0, vdz 25, vdaa 26, ...
vd_index() {
	local s=${1#vd} c n=0
	while [ -n "$s" ]; do
		c=${s%"${s#?}"}
		n=$((n * 26 + $(printf %d "'$c") - 96))
		s=${s#?}
	done
	echo $((n - 1))
}
[ "$hidden" = "virtblk$(vd_index "$vd")" ] ||
	fail "hidden disk of $vd is $hidden, expected virtblk$(vd_index "$vd")"
[ "$(cat /sys/block/"$hidden"/hidden)" = 1 ] || fail "$hidden is not hidden"
[ ! -e /dev/"$hidden" ] || fail "$hidden has a device node"
[ "$(cat /sys/block/"$hidden"/queue/io_poll)" = 1 ] || fail "$hidden: queue/io_poll is not 1"
[ "$(cat "$sys/queue/io_poll")" = 1 ] ||
	fail "$vd: queue/io_poll is not 1 (polled bios would lose REQ_POLLED before the remap)"
ktap_log "$vd on $vdev, hidden request disk $hidden, io_poll=1 on both"

# One poll hctx per poll queue, after the default ones.
dbg=/sys/kernel/debug/block/$hidden
[ -d "$dbg" ] || fail "no $dbg (debugfs not mounted or no CONFIG_BLK_DEBUG_FS)"
types=$(cat "$dbg"/hctx*/type | sort | uniq -c | tr -s ' \n' '  ')
[ "$(grep -lx poll "$dbg"/hctx*/type | wc -l)" = "$npoll" ] ||
	fail "$hidden: want $npoll poll hctx, have:$types"
[ "$(grep -lx default "$dbg"/hctx*/type | wc -l)" -ge 1 ] || fail "$hidden: no default hctx:$types"
ktap_log "$hidden hctx types:$types"

grep -q " $vdev-req\." /proc/interrupts || fail "no $vdev-req.* line in /proc/interrupts"
grep " $vdev-req_poll" /proc/interrupts && fail "a poll queue of $vdev has an interrupt"

# irqs: interrupts of the device's default queues, all CPUs.
irqs() {
	awk -v q="$vdev-req." '
		index($NF, q) == 1 {
			for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++)
				n += $i
		}
		END { print n + 0 }' /proc/interrupts
}

# job NAME DEPTH FIO-ARGS...: a 4k random write + verify job of $ios
# I/Os, DEPTH in flight, bounded in time (a polled request nobody reaps
# never completes).
job() {
	local name=$1 depth=$2
	shift 2
	vblk_fio_verified 90 "$name" "$dev" --ioengine=io_uring --iodepth=$depth \
		--size=${mb}M "$@"
	grep -q "issued rwts: total=$((ios / 2)),$((ios / 2))," /tmp/vblk_fio.out ||
		{ cat /tmp/vblk_fio.out; fail "$name: fio did not do $ios I/Os"; }
}

# measured PATH NAME DEPTH FIO-ARGS...: run a job on PATH with udev
# paused; $delta is the default queues' interrupt count over it.
measured() {
	local path=$1 before after
	shift
	vblk_set_path "$sys" "$path" || fail "cannot switch $vd to $path"
	vblk_udev_hold 60 "$path: before the measured job"
	before=$(irqs)
	job "$@"
	after=$(irqs)
	vblk_udev_release
	delta=$((after - before))
}

measured request request-hipri 8 --hipri
polled=$delta
ktap_log "request path, hipri: $ios I/Os verified, $polled interrupts"
[ "$polled" -le $((ios / 50)) ] ||
	fail "request path, hipri: $polled interrupts for $ios I/Os: not completed by polling"

measured request request-irq 1
irq=$delta
ktap_log "request path, no hipri: $ios I/Os verified, $irq interrupts"
[ "$irq" -ge $((ios / 2)) ] ||
	fail "request path, no hipri: only $irq interrupts for $ios I/Os: the count does not see this disk"

# The bio path has no poll queue: REQ_POLLED is dropped, the interrupt
# completes the bio, and io_uring's polling finds nothing to reap.
measured bio bio-hipri 1 --hipri
bio=$delta
ktap_log "bio path, hipri: $ios I/Os verified, $bio interrupts"
[ "$bio" -ge $((ios / 2)) ] ||
	fail "bio path, hipri: only $bio interrupts for $ios I/Os"

# Live switches during polled I/O, including 1 MiB writes that the
# request path splits: at least 4 runs and 10 switches, however fast the
# host (at most 20 runs).
done_flag=/tmp/vblk_poll.done
rm -f $done_flag
echo 0 >$done_flag.n
(
	i=0
	while [ ! -e $done_flag ]; do
		[ $((i % 2)) = 0 ] && p=request || p=bio
		vblk_set_path "$sys" $p || exit 1
		i=$((i + 1))
		echo $i >$done_flag.t && mv $done_flag.t $done_flag.n
		sleep 0.05
	done
) &
switcher=$!
n=0
while [ $n -lt 4 ] || [ "$(cat $done_flag.n)" -lt 10 ]; do
	n=$((n + 1))
	[ $n -le 20 ] ||
		{ : >$done_flag; fail "only $(cat $done_flag.n) switches in 20 polled runs"; }
	timeout -s KILL 120 fio --output=/tmp/vblk_poll.fio --filename="$dev" \
		--direct=1 --ioengine=io_uring --hipri --verify=crc32c --verify_fatal=1 \
		--name=small --rw=randwrite --bs=4k --iodepth=16 --size=8M --offset=0 \
		--name=large --rw=randwrite --bsrange=64k-1m --iodepth=4 --size=16M --offset=16M \
		>/tmp/vblk_poll.err 2>&1 ||
		{ : >$done_flag; cat /tmp/vblk_poll.fio /tmp/vblk_poll.err; fail "switching run $n: fio failed or hung"; }
	grep -q "err= 0" /tmp/vblk_poll.fio ||
		{ : >$done_flag; cat /tmp/vblk_poll.fio; fail "switching run $n: fio reported errors"; }
	kill -0 $switcher 2>/dev/null || fail "a path switch failed"
done
: >$done_flag
wait $switcher || fail "a path switch failed"
switches=$(cat $done_flag.n)
[ "$switches" -ge 10 ] || fail "only $switches switches during the polled runs"
ktap_log "$n polled, verified fio runs across $switches path switches"

[ $udev = 1 ] && udevadm settle --timeout=20
vblk_wait_idle 5 "$vd" "$sys/inflight" "/sys/block/$hidden/inflight"
exit $KSFT_PASS
