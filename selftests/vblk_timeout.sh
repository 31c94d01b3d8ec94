#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Commands the device does not complete (the pattern of blktests
# block/011): with the disk's timeout at a few seconds, fio writes and
# verifies while PCI bus mastering is turned off and, a few seconds later,
# on again, through the device's config space.  QEMU's virtio-pci
# disables the device when bus mastering goes off: the commands it had
# taken never complete, even once bus mastering is back, and it takes no
# new one until it is back and notified again.  Without a timeout
# handler the I/O that was in flight never completes.  In this order:
#
# - parked: on a slow device with a small ring and many tags, commands
#   wait parked for longer than the timeout, on each path: only the
#   device's time counts, so no reset may happen;
# - suspended: a suspend begins while the device is stopped, on each path
#   of the bio-capable disk: the freeze drains the disk, which needs the
#   timeouts, and must complete;
# - stall: on a plain disk (request path, queue/io_timeout) and on a
#   bio-capable one on each path (vdX/io_timeout), the driver must reset
#   the device (counted in debugfs, logged), fio must end within a bound
#   with its data verified or with I/O errors (EIO) only, and the disk
#   must take verified I/O again afterwards (nothing notifies the device
#   once bus mastering is back: fio, at its rate, waits for what it has
#   in flight before it writes again, and udev's events wait, so what
#   fio wrote while it was off stays untaken too); then the same with bus
#   mastering off for five timeouts: a reset cannot bring the device back
#   meanwhile, so what was in flight times out a second time and must end
#   with EIO;
# - dead: a reset that cannot bring the device back (debugfs fail_reinit:
#   the device refuses FEATURES_OK once), on each disk and path: what was
#   in flight and every new command must end with EIO at once, and
#   binding the driver again must bring the disk back whole.
#
# No task may hang (the runner fails the guest then).
#
# vmtest guest ours-timeout --driver ours
# vmtest with --module-param queue_depth=64
# vmtest disk plain ram size=64M dev.bio=off role=timeout
# vmtest disk capable ram size=64M dev.bio=on dev.x-test-rotation-rate=1 \
#     dev.x-test-read-latency-hint=45 role=timeout
# vmtest disk slow null size=64M latency-ns=100000000 dev.queue-size=4 \
#     dev.num-queues=1 dev.bio=on dev.x-test-rotation-rate=1 \
#     dev.x-test-read-latency-hint=45 role=parked
# vmtest timeout 600
. ./test_common.sh
. ./vblk_lib.sh

vblk_require ours fio dd od /sys/power/pm_test
vblk_debugfs

# udev's probes (of a disk that changed path or was written and closed)
# read the disk: held while a case needs the I/O to be its own.
trap vblk_udev_release EXIT

# Timeout of the test's disks, in ms
timeout_ms=4000
# How long bus mastering stays off, in s.  Short: less than the timeout,
# so that the first reset finds the device answering again and fio
# completes (a slow host may make the stall longer, and then fio ends
# with EIO).  Long: five timeouts, so that every command in flight times
# out twice while the device cannot answer, whatever the host's speed.
short_secs=3
long_secs=20

# pci SYS: the PCI function of the disk's virtio device.
pci() {
	readlink -f "$1/device/.."
}

# command_low PCI: the low byte of the PCI command register, in decimal.
command_low() {
	echo $(od -An -tu1 -j4 -N1 "$1/config")
}

# set_command_low PCI VALUE: write the low byte of the command register,
# as setpci -s SLOT COMMAND.b=VALUE does.
set_command_low() {
	printf "\\$(printf %03o "$2")" |
		dd of="$1/config" bs=1 seek=4 count=1 conv=notrunc 2>/dev/null
}

# master PCI on|off: turn bus mastering (bit 2) on or off.
master() {
	local v
	v=$(command_low "$1")
	if [ "$2" = on ]; then
		v=$((v | 4))
	else
		v=$((v & ~4))
	fi
	set_command_low "$1" $v || return 1
	[ $(( $(command_low "$1") & 4 )) -eq $([ "$2" = on ] && echo 4 || echo 0) ]
}

resets() {
	awk '{ print $2 }' "/sys/kernel/debug/virtio_blk/$1/resets"
}

# More than N device resets of disk VD
reset_after() {
	[ "$(resets "$1")" -gt "$2" ]
}

# logged TEXT: how many lines of the kernel log hold TEXT.
logged() {
	dmesg | grep -c "$1"
}

# logged_more TEXT N: more than N lines of the kernel log hold TEXT.
logged_more() {
	[ "$(logged "$1")" -gt "$2" ]
}

# only_eio FILE...: fio reported an I/O error (EIO) in FILEs, and no
# other error.
only_eio() {
	cat "$@" | grep -q "Input/output error" &&
		! cat "$@" | grep "error=" | grep -qv "Input/output error"
}

# prepare NAME PATH: put disk NAME on PATH with the test's timeout; sets
# dev, sys, vd, tag and pcidir.
prepare() {
	local name=$1 path=$2 tfile
	dev=$(vblk_dev "$name") || fail "$name missing"
	sys=$(vblk_sys "$dev")
	vd=${sys##*/}
	tag="$name ($path path)"
	if [ "$name" != plain ]; then
		vblk_hidden "$sys" >/dev/null || fail "$tag: not bio-capable"
		vblk_set_path "$sys" "$path" || fail "$tag: cannot switch to $path"
		tfile=$sys/io_timeout
	else
		tfile=$sys/queue/io_timeout
		[ ! -e "$sys/io_timeout" ] ||
			fail "$tag: a plain disk has io_timeout besides queue/io_timeout"
	fi
	echo $timeout_ms >"$tfile" || fail "$tag: cannot set $tfile"
	[ "$(cat "$tfile")" = $timeout_ms ] || fail "$tag: $tfile reads $(cat "$tfile")"
	pcidir=$(pci "$sys")
	[ -e "$pcidir/config" ] || fail "$tag: no PCI config space at $pcidir"
}

# writer: fio writes to the disk under test in the background for at
# least 10 s (the rate is a ceiling: a slow host only makes it longer),
# then reads back and verifies; sets fiopid once I/O is in flight.
writer() {
	fio --name=timeout --filename="$dev" --direct=1 --ioengine=libaio \
	    --iodepth=16 --rw=randwrite --bs=4k --size=4M --rate_iops=100 \
	    --verify=crc32c --verify_fatal=1 \
	    --output=/tmp/vblk_timeout.out >/tmp/vblk_timeout.err 2>&1 &
	fiopid=$!
	vblk_wait 60 "$tag: I/O in flight" vblk_busy $(vblk_inflight_files "$sys")
}

# writer_end WHAT any|eio: the writer must end within a bound after WHAT,
# with its data verified or with EIO only (eio: with EIO); then nothing
# may be in flight and the disk must take verified I/O again.
writer_end() {
	local what=$1 expect=$2 rc
	vblk_wait 240 "$tag: fio to end after the $what" vblk_exited $fiopid
	wait $fiopid
	rc=$?
	[ $rc -ne 0 ] || [ "$expect" != eio ] ||
		{ cat /tmp/vblk_timeout.out; fail "$tag: fio completed through the $what"; }
	if [ $rc -ne 0 ]; then
		only_eio /tmp/vblk_timeout.out /tmp/vblk_timeout.err ||
			{ cat /tmp/vblk_timeout.out /tmp/vblk_timeout.err
			  fail "$tag: fio failed ($rc) with other than EIO"; }
		ktap_log "$tag: fio ended with EIO"
	else
		ktap_log "$tag: fio completed, data verified"
	fi
	vblk_wait_idle 60 "$tag: after the $what" $(vblk_inflight_files "$sys")
	vblk_fio_verified 180 "after-$what-$vd-$path" "$dev" --size=8M
	ktap_log "$tag: the disk takes verified I/O again"
}

# stall NAME PATH SECONDS any|eio: the test on one disk and path, bus
# mastering off for SECONDS; eio: fio must end with EIO.
stall() {
	local name=$1 path=$2 off_secs=$3 expect=$4 before logs
	local msg="I/O timed out: resetting the device"
	prepare "$name" "$path"
	before=$(resets "$vd")
	logs=$(logged "$msg")
	vblk_udev_hold 60 "$tag"
	writer
	master "$pcidir" off || fail "$tag: bus mastering does not go off"
	ktap_log "$tag: bus mastering off for ${off_secs} s under I/O"
	sleep $off_secs
	master "$pcidir" on || fail "$tag: bus mastering does not come back"

	vblk_wait 120 "$tag: a device reset" reset_after "$vd" "$before"
	vblk_udev_release
	ktap_log "$tag: $(( $(resets "$vd") - before )) reset(s)"
	vblk_wait 30 "$tag: the reset in the kernel log" logged_more "$msg" "$logs"
	writer_end stall "$expect"
}

# eio_now WHAT DD-ARGS...: one direct 4k dd of the disk under test must
# fail with EIO, and at once (within 30 s, however busy the host).
eio_now() {
	local what=$1 pid rc
	shift
	dd bs=4k count=1 "$@" >/dev/null 2>/tmp/vblk_timeout.dd &
	pid=$!
	vblk_wait 30 "$tag: the $what to fail" vblk_exited $pid
	wait $pid
	rc=$?
	[ $rc -ne 0 ] || fail "$tag: a $what succeeded on a device that is not back"
	grep -q "Input/output error" /tmp/vblk_timeout.dd ||
		{ cat /tmp/vblk_timeout.dd; fail "$tag: the $what failed other than with EIO"; }
}

# dead NAME PATH: the one reset of a stall finds a device that refuses
# FEATURES_OK (injected through debugfs).  fio must end with EIO, new
# reads and writes must fail with EIO at once, nothing may stay in
# flight, and unbinding the driver and binding it again must bring back
# a disk that takes verified I/O.
dead() {
	local name=$1 path=$2 before fiopid rc vdev pid
	local drv=/sys/bus/virtio/drivers/virtio_blk
	local inject logs msg="cannot set the device up again after a reset: -19"
	prepare "$name" "$path"
	inject=/sys/kernel/debug/virtio_blk/$vd/fail_reinit
	before=$(resets "$vd")
	logs=$(logged "$msg")
	echo 1 >"$inject" || fail "$tag: cannot write $inject"

	fio --name=dead --filename="$dev" --direct=1 --ioengine=libaio \
	    --iodepth=16 --rw=randwrite --bs=4k --size=4M --rate_iops=100 \
	    --time_based --runtime=600 \
	    --output=/tmp/vblk_timeout.out >/tmp/vblk_timeout.err 2>&1 &
	fiopid=$!
	vblk_wait 60 "$tag: I/O in flight" vblk_busy $(vblk_inflight_files "$sys")
	master "$pcidir" off || fail "$tag: bus mastering does not go off"
	vblk_wait 120 "$tag: a device reset" reset_after "$vd" "$before"
	master "$pcidir" on || fail "$tag: bus mastering does not come back"
	# The count goes up as the reset begins; the re-initialisation that
	# uses the fault and logs its failure comes after.
	vblk_wait 30 "$tag: the failed re-initialisation in the kernel log" \
		logged_more "$msg" "$logs"
	[ "$(cat "$inject")" = 0 ] || fail "$tag: the injected fault was not used"
	ktap_log "$tag: the reset found a device that refuses FEATURES_OK"

	vblk_wait 60 "$tag: fio to end with the device" vblk_exited $fiopid
	wait $fiopid
	rc=$?
	[ $rc -ne 0 ] || fail "$tag: fio succeeded without a device"
	only_eio /tmp/vblk_timeout.out /tmp/vblk_timeout.err ||
		{ cat /tmp/vblk_timeout.out /tmp/vblk_timeout.err
		  fail "$tag: fio failed ($rc) with other than EIO"; }
	eio_now read if="$dev" of=/dev/null iflag=direct
	eio_now write if=/dev/zero of="$dev" oflag=direct conv=notrunc
	vblk_wait_idle 30 "$tag: a device that is not back" $(vblk_inflight_files "$sys")
	ktap_log "$tag: fio and new I/O ended with EIO, nothing in flight"

	vdev=$(basename "$(readlink -f "$sys/device")")
	echo "$vdev" >$drv/unbind &
	pid=$!
	vblk_wait 30 "$tag: unbind of $vdev" vblk_exited $pid
	wait $pid || fail "$tag: unbinding $vdev failed"
	echo "$vdev" >$drv/bind || fail "$tag: binding $vdev again failed"
	vblk_settle
	vblk_wait 30 "$tag: $name back" vblk_has_disk "$name"
	prepare "$name" "$path"
	vblk_fio_verified 180 "back-$vd-$path" "$dev" --size=8M
	ktap_log "$tag: bound again, the disk takes verified I/O"
}

# max_lat_ms JSON: the longest completion latency of the reads of fio's
# JSON report, in ms.
max_lat_ms() {
	awk '/"lat_ns"/ { f = 1 } f && /"max"/ { gsub(/[^0-9]/, ""); print int($0 / 1000000); exit }' "$1"
}

# parked PATH: disk slow takes 100 ms a command, and its ring of four
# descriptors holds one (no indirect tables for a disk whose medium asks
# for the bio path): with 64 reads in flight, a read waits parked for
# about 6 s, longer than the timeout, but none stays on the ring for long.
# fio must end without an error, no reset may happen, and the longest
# read must have taken longer than the timeout (or the test proved
# nothing; a slower host only makes the waits longer).
parked() {
	local path=$1 before lat fiopid
	prepare slow "$path"
	before=$(resets "$vd")
	fio --name=parked --filename="$dev" --direct=1 --ioengine=libaio \
	    --iodepth=64 --rw=randread --bs=4k --time_based --runtime=10 \
	    --output-format=json --output=/tmp/vblk_parked.json \
	    >/tmp/vblk_timeout.err 2>&1 &
	fiopid=$!
	vblk_wait 180 "$tag: fio to end" vblk_exited $fiopid
	wait $fiopid ||
		{ cat /tmp/vblk_parked.json /tmp/vblk_timeout.err; fail "$tag: fio failed"; }
	[ "$(resets "$vd")" = "$before" ] ||
		fail "$tag: $(( $(resets "$vd") - before )) reset(s) of a device that answered"
	lat=$(max_lat_ms /tmp/vblk_parked.json)
	[ -n "$lat" ] || { cat /tmp/vblk_parked.json; fail "$tag: no latency in fio's report"; }
	[ "$lat" -gt $timeout_ms ] ||
		fail "$tag: the longest read took $lat ms, no more than the $timeout_ms ms timeout: nothing waited long enough to tell"
	ktap_log "$tag: reads waited up to $lat ms (timeout $timeout_ms ms), no reset"
}

# reads_inflight FILE...: a read is in flight in one of these inflight
# files.
reads_inflight() {
	local f r w
	for f in "$@"; do
		read -r r w <"$f" || continue
		[ "$r" = 0 ] || return 0
	done
	return 1
}

# suspended PATH: the device stops under verified I/O and a suspend
# (pm_test=devices) begins while it is stopped.  Bus mastering stays off
# until the suspend has ended: what the device had taken is lost, and it
# takes nothing new, so a command is sure to be stuck only while bus
# mastering is off (the writer, at 100 writes a second of far less than
# 10 ms each, need not have one in flight; a command submitted while it
# is off is taken at the next notification after it is on again).  So
# the test submits its own command once bus mastering is off, an
# asynchronous read (a task waiting for it stays freezable), and
# suspends once it is in flight.  udev's events wait meanwhile: its probe
# of the disk could be the read in flight, the test's own still to be
# submitted, after the resume, when the PCI core has turned bus
# mastering on again.  The driver's freeze drains the disk: the read
# times out, the reset cannot bring back a device without bus mastering,
# the read times out again and ends with EIO (on a host slow enough to
# take the timeouts before the freeze, they come first).  The suspend
# must complete with at least one reset, the read must end with EIO, and
# the writer verified or with EIO only.
suspended() {
	local path=$1 before rpid rc
	prepare capable "$path"
	before=$(resets "$vd")
	vblk_udev_hold 60 "$tag"
	writer
	master "$pcidir" off || fail "$tag: bus mastering does not go off"
	fio --name=stuck --filename="$dev" --direct=1 --ioengine=libaio \
	    --iodepth=1 --rw=read --bs=4k --size=4k \
	    --output=/tmp/vblk_stuck.out >/tmp/vblk_stuck.err 2>&1 &
	rpid=$!
	vblk_wait 60 "$tag: a read in flight on the stopped device" \
		reads_inflight $(vblk_inflight_files "$sys")
	echo devices >/sys/power/pm_test || fail "cannot set pm_test"
	if ! echo freeze >/sys/power/state; then
		echo none >/sys/power/pm_test
		fail "$tag: suspend with the device stopped failed"
	fi
	echo none >/sys/power/pm_test
	master "$pcidir" on || fail "$tag: bus mastering does not come back"
	vblk_udev_release
	reset_after "$vd" "$before" ||
		fail "$tag: suspended and resumed without resetting the stopped device"
	ktap_log "$tag: suspended and resumed with the device stopped, $(( $(resets "$vd") - before )) reset(s)"
	vblk_wait 120 "$tag: the read to end after the suspend" vblk_exited $rpid
	wait $rpid
	rc=$?
	[ $rc -ne 0 ] && only_eio /tmp/vblk_stuck.out /tmp/vblk_stuck.err ||
		{ cat /tmp/vblk_stuck.out /tmp/vblk_stuck.err
		  fail "$tag: the stuck read ended ($rc) other than with EIO"; }
	writer_end suspend any
}

parked request
parked bio
suspended bio
suspended request
stall plain request $short_secs any
stall capable bio $short_secs any
stall capable request $short_secs any
stall plain request $long_secs eio
stall capable bio $long_secs eio
dead plain request
dead capable bio
dead capable request
exit $KSFT_PASS
