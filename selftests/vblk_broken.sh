#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A device that breaks its ring under I/O: the vhost-user test back end
# writes a used entry with an id out of range, and the guest marks the
# virtqueue broken.  Every I/O must end with an error, in flight or new,
# on a plain disk and on both paths of a bio-capable one; no task may
# hang, and the devices and the module must go away.  The in-tree driver
# leaves the I/O in flight forever.
#
# Needs three vhost disks (the back end breaks on request); the test makes
# the second and third bio-capable itself.  A fourth, zoned, has its ring
# broken by a zone report itself, which waits for its command while it
# holds the device's lock: the report must end with EIO long before the
# disk's timeout (set to 10 minutes) could have reset the device.
#
# vmtest guest ours-broken --driver ours
# vmtest disk b1 vhost size=64M
# vmtest disk b2 vhost size=64M
# vmtest disk b3 vhost size=64M
# vmtest disk bz vhost size=64M dev.x-zoned=on cfg.zone_sectors=2048
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || fail "needs the adaptive driver"
disks=
for info in $VBLK_DISK_INFO; do
	rest=${info#*:}
	[ "${rest%%:*}" = vhost ] && disks="$disks ${info%%:*}"
done
set -- $disks
[ $# -ge 4 ] || fail "want four vhost disks, have $#"
command -v blkzone >/dev/null || fail "blkzone (util-linux) is not in the guest"

idle() { [ "$(echo $(cat "$1/inflight"))" = "0 0" ]; }
# done_ios SYS: reads and writes completed on the disk.
done_ios() { awk '{ print $1 + $5 }' "$1/stat"; }

# break_under_io NAME SHAPE PATH
break_under_io() {
	local name=$1 shape=$2 path=$3 dev sys vdev fiopid rc ddpid ios
	# Looked up first: reading the serial is I/O too.
	dev=$(vblk_dev "$name") || fail "$name missing"
	sys=$(vblk_sys "$dev")
	vdev=$(basename "$(readlink -f "$sys/device")")
	if [ "$shape" = bio-capable ]; then
		vblk_set_path "$sys" bio || fail "$name: cannot re-create it bio-capable"
		vblk_hidden "$sys" >/dev/null || fail "$name: not bio-capable"
	fi
	vblk_set_path "$sys" "$path" || fail "$name: cannot switch to $path"
	vblk_settle

	ios=$(done_ios "$sys")
	fio --name=broken --filename="$dev" --rw=randrw --bs=4k --iodepth=32 \
	    --ioengine=libaio --direct=1 --time_based --runtime=120 \
	    --output=/tmp/vblk_broken.$name >/dev/null 2>&1 &
	fiopid=$!
	# Under I/O: wait for fio's first completions.
	vblk_wait 30 "I/O from fio on $dev" \
		sh -c "[ \$(awk '{ print \$1 + \$5 }' $sys/stat) -gt $((ios + 1000)) ]"
	vblk_host backend "$name" break-used-id >/dev/null ||
		{ kill $fiopid; fail "$name: the back end did not break the ring"; }

	vblk_wait 60 "end of fio on a broken $dev ($shape, $path)" vblk_exited $fiopid
	wait $fiopid
	rc=$?
	[ $rc != 0 ] || fail "$name: fio succeeded on a broken device"
	grep -q "Input/output error" /tmp/vblk_broken.$name ||
		{ cat /tmp/vblk_broken.$name; fail "$name: fio did not see EIO"; }
	dmesg | grep -q "$vdev: virtqueue broken" ||
		fail "$name: no 'virtqueue broken' line for $vdev"

	# New I/O fails at once.
	dd if="$dev" of=/dev/null bs=4k count=1 skip=7 iflag=direct 2>/dev/null &
	ddpid=$!
	vblk_wait 10 "end of a read from the broken $dev" vblk_exited $ddpid
	wait $ddpid && fail "$name: a read from the broken device succeeded"
	vblk_wait 10 "idle $dev" idle "$sys"
	ktap_log "$name: $dev ($shape, $path) broken under fio: fio ended with EIO (status $rc), new reads fail, nothing in flight"
}

# break_under_report NAME: the zoned disk's ring breaks on the command of
# a zone report, the only I/O then.
break_under_report() {
	local name=$1 dev sys vdev pid rc
	dev=$(vblk_dev "$name") || fail "$name missing"
	sys=$(vblk_sys "$dev")
	vdev=$(basename "$(readlink -f "$sys/device")")
	[ "$(cat "$sys/queue/zoned")" = host-managed ] ||
		fail "$name: not a host-managed zoned disk"
	echo 600000 >"$sys/queue/io_timeout" || fail "$name: cannot set io_timeout"
	vblk_settle
	vblk_host backend "$name" break-used-id >/dev/null ||
		fail "$name: the back end did not break the ring"
	blkzone report "$dev" >/tmp/vblk_broken.$name 2>&1 &
	pid=$!
	vblk_wait 60 "end of a zone report on a broken $dev" vblk_exited $pid
	wait $pid
	rc=$?
	[ $rc != 0 ] || fail "$name: the zone report succeeded on a broken device"
	dmesg | grep -q "$vdev: virtqueue broken" ||
		fail "$name: no 'virtqueue broken' line for $vdev"
	vblk_wait 10 "idle $dev" idle "$sys"
	ktap_log "$name: $dev (zoned) broken by a zone report: it failed (status $rc) at once, nothing in flight"
}

break_under_io "$1" plain request
break_under_io "$2" bio-capable bio
break_under_io "$3" bio-capable request
break_under_report "$4"

# Broken devices go away, and then the module.
for d in /sys/bus/virtio/drivers/virtio_blk/virtio*; do
	echo "${d##*/}" >/sys/bus/virtio/drivers/virtio_blk/unbind &
	vblk_wait 30 "unbind of ${d##*/}" vblk_exited $!
done
vblk_unload || fail "rmmod virtio_blk failed"
ktap_log "broken devices unbound, module unloaded"
exit $KSFT_PASS
