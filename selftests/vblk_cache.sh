#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Write cache and flush: cache_type follows the device (writable with
# VIRTIO_BLK_F_CONFIG_WCE), queue/write_cache follows cache_type, and
# fsync, O_SYNC (FUA) and O_DIRECT|O_DSYNC writes succeed and read back
# on both paths in both cache modes.
#
# vmtest guest ours-capable --driver ours
# vmtest disk d1 ram size=64M dev.num-queues=2 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")
vblk_keep_path "$sys"
ct=$(cat "$sys/cache_type")
case $ct in
"write back"|"write through") ;;
*) fail "cache_type reads '$ct'" ;;
esac

modes="$ct"
if { echo "$ct" >"$sys/cache_type"; } 2>/dev/null; then
	modes="write through/write back"
else
	ktap_log "cache_type is read-only (no VIRTIO_BLK_F_CONFIG_WCE)"
fi
{ echo "write sideways" >"$sys/cache_type"; } 2>/dev/null &&
	fail "cache_type accepted a bad value"

paths=current
vblk_ours && paths=$(vblk_paths "$sys")
dd if=/dev/urandom of=/tmp/vblk_cache.ref bs=64k count=32 2>/dev/null
IFS=/
for m in $modes; do
	unset IFS
	if [ "$modes" != "$ct" ]; then
		echo "$m" >"$sys/cache_type" || fail "cannot set cache_type $m"
	fi
	[ "$(cat "$sys/cache_type")" = "$m" ] || fail "cache_type is not $m"
	[ "$(cat "$sys/queue/write_cache")" = "$m" ] ||
		fail "queue/write_cache is $(cat "$sys/queue/write_cache") with cache_type $m"
	for p in $paths; do
		[ "$p" = current ] || vblk_set_path "$sys" "$p" || fail "cannot switch to $p"
		dd if=/tmp/vblk_cache.ref of="$dev" bs=64k conv=fsync 2>/dev/null ||
			fail "$p/$m: dd conv=fsync failed"
		dd if="$dev" of=/tmp/vblk_cache.got bs=64k count=32 iflag=direct 2>/dev/null ||
			fail "$p/$m: read back failed"
		cmp -s /tmp/vblk_cache.ref /tmp/vblk_cache.got || fail "$p/$m: data differs"
		# O_SYNC (FUA when direct), O_DSYNC, fsync after every write.
		for opts in "--sync=1" "--direct=1 --sync=1" "--direct=1 --sync=dsync" \
			    "--direct=1 --fsync=1" "--fdatasync=1"; do
			fio --name=fl --filename="$dev" --rw=randwrite --bsrange=4k-64k \
			    --ioengine=psync --size=2M --verify=crc32c $opts \
			    --output=/tmp/vblk_cache.fio >/dev/null 2>&1 ||
				fail "$p/$m: fio $opts failed"
		done
		ktap_log "$p, $m: fsync/O_SYNC/O_DSYNC writes read back"
	done
	IFS=/
done
unset IFS
[ "$modes" != "$ct" ] && echo "$ct" >"$sys/cache_type"
vblk_put_back_path "$sys"
exit $KSFT_PASS
