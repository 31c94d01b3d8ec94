#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Hot-unplug under I/O: for each disk of role=unplug (the first on the bio
# path, the next on the request path, and so on), start fio on it, have
# the host remove the device over QMP (device_del), and check that the
# disk goes away and fio ends.  The runner fails the run on any Oops,
# WARNING or hung task this causes.
#
# vmtest guest ours-vblk-hotunplug --driver ours
# vmtest disk d1 ram size=16M dev.bio=off
# vmtest disk hp1 null size=64M latency-ns=2000000 dev.queue-size=16 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45 role=unplug
# vmtest disk hp2 ram size=64M dev.num-queues=2 dev.bio=off role=unplug
. ./test_common.sh
. ./vblk_lib.sh

# gone FILE: FILE is not there (any more).
gone() {
	[ ! -e "$1" ]
}

disks=$(vblk_role_disks unplug)
[ -n "$disks" ] || fail "no disk with role=unplug"

i=0
for name in $disks; do
	dev=$(vblk_dev "$name") || fail "$name missing"
	sys=$(vblk_sys "$dev")
	p=current
	if vblk_ours; then
		[ $((i % 2)) = 0 ] && p=bio || p=request
		vblk_set_path "$sys" $p || fail "cannot switch $name to $p"
	fi
	fio --name=hp --filename="$dev" --rw=randrw --bs=4k --iodepth=16 \
	    --ioengine=libaio --direct=1 --time_based --runtime=60 \
	    --output=/tmp/vblk_hp.$name >/dev/null 2>&1 &
	fiopid=$!
	vblk_wait 30 "$name: fio I/O in flight" vblk_busy $(vblk_inflight_files "$sys")

	# A failed reply is logged, not fatal by itself (it failed once in
	# make check without saying why): the disk must go away regardless.
	reply=$(vblk_host device_del "$name") ||
		ktap_log "$name: device_del reply: $reply"

	vblk_wait 20 "$name: $sys to go after the unplug" gone "$sys"
	vblk_until 20 vblk_exited $fiopid || { kill -9 $fiopid; fail "$name: fio did not end in 20 s"; }
	wait $fiopid
	ktap_log "$name ($p): unplugged under I/O, fio ended"
	i=$((i + 1))
done
exit $KSFT_PASS
