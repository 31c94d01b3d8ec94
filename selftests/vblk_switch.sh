#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Live path switching: 1,000 switches of io_path at random intervals
# (0 to 40 ms, from a logged seed; VBLK_SWITCH_SEED repeats it) while fio
# writes (direct and buffered, flushing every few writes) and verifies on
# the raw disk, then 200 more with an ext4 filesystem mounted on it
# (written with fsync, verified, checked again after a remount).  Any I/O
# error, any verification failure or any failed switch fails the test.
# 1,200 switches with fio runs between them take minutes under emulation.
# vmtest timeout 600
#
# vmtest guest ours-capable --driver ours
# vmtest disk d1 ram size=64M dev.num-queues=2 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

vblk_require ours
dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")
vblk_keep_path "$sys"
switches=${VBLK_SWITCHES:-1000}
fs_switches=${VBLK_FS_SWITCHES:-200}
seed=${VBLK_SWITCH_SEED:-$(( $(date +%s) % 100000 + 1 ))}
ktap_log "switch intervals from seed $seed"
lbs=$(cat "$sys/queue/logical_block_size")
done_flag=/tmp/vblk_switch.done

# start_switcher N: switch N times in the background ($switcher), each
# after a pause of 0 to 40 ms drawn from $seed.
start_switcher() {
	rm -f $done_flag
	(
		i=0
		r=$seed
		while [ $i -lt "$1" ]; do
			[ $((i % 2)) = 0 ] && p=bio || p=request
			echo $p >"$sys/io_path" || exit 1
			[ "$(cat "$sys/io_path")" = $p ] || exit 1
			r=$(( (r * 1103515245 + 12345) % 2147483648 ))
			sleep "$(printf '0.%03d' $((r % 41)))"
			i=$((i + 1))
		done
		: >$done_flag
	) &
	switcher=$!
}

switcher_alive() {
	kill -0 $switcher 2>/dev/null || [ -e $done_flag ] || fail "a switch failed"
}

# Raw device: direct and buffered writers with flushes, verified.
start_switcher "$switches"
runs=0
while [ ! -e $done_flag ] || [ $runs = 0 ]; do
	fio --output=/tmp/vblk_switch.fio --ioengine=libaio --verify=crc32c \
	    --verify_fatal=1 --filename="$dev" --rw=randwrite \
	    --name=direct --direct=1 --iodepth=16 --bsrange=$lbs-2m \
	    --size=12M --offset=0 --fsync=8 \
	    --name=buffered --direct=0 --iodepth=1 --bsrange=$((lbs > 4096 ? lbs : 4096))-256k \
	    --size=8M --offset=16M --fsync=4 ||
		{ cat /tmp/vblk_switch.fio; kill $switcher; fail "fio run $runs failed"; }
	grep -q "err= 0" /tmp/vblk_switch.fio ||
		{ cat /tmp/vblk_switch.fio; kill $switcher; fail "fio run $runs reported errors"; }
	runs=$((runs + 1))
	switcher_alive
done
wait $switcher || fail "a switch failed"
ktap_log "raw: $switches switches over $runs verified fio runs on $dev"

# Mounted: a filesystem on the disk, files written with fsync and
# verified during the switches, then checked again after a remount.
mnt=/tmp/vblk_switch.mnt
vblk_require mke2fs
modprobe ext4 2>/dev/null || grep -qw ext4 /proc/filesystems || fail "no ext4 in the guest"
# 4 KiB blocks: a small filesystem would get 1 KiB ones, which a disk
# with 4 KiB logical blocks cannot mount.
mke2fs -F -b 4096 "$dev" >/dev/null 2>&1 || fail "mke2fs $dev failed"
mkdir -p $mnt
mount -t ext4 "$dev" $mnt || fail "mounting $dev failed"
{
	start_switcher "$fs_switches"
	runs=0
	while [ ! -e $done_flag ] || [ $runs = 0 ]; do
		fio --output=/tmp/vblk_switch.fio --directory=$mnt --name=fs \
		    --nrfiles=4 --size=8M --rw=randwrite --bsrange=4k-128k \
		    --ioengine=psync --fsync=4 --verify=crc32c --verify_fatal=1 ||
			{ cat /tmp/vblk_switch.fio; kill $switcher; umount $mnt; fail "fs fio run $runs failed"; }
		runs=$((runs + 1))
		switcher_alive
	done
	wait $switcher || { umount $mnt; fail "a switch failed"; }
	sync
	sum=$(cat $mnt/fs.* | md5sum)
	umount $mnt || fail "umount failed"
	mount -t ext4 "$dev" $mnt || fail "remount failed"
	[ "$(cat $mnt/fs.* | md5sum)" = "$sum" ] || { umount $mnt; fail "files changed across remount"; }
	umount $mnt
	ktap_log "mounted: $fs_switches switches over $runs verified fio runs"
}

# udev may be probing the disk after the last writer closed it.
vblk_settle
vblk_wait_idle 5 "$dev" "$sys/inflight"
vblk_put_back_path "$sys"
exit $KSFT_PASS
