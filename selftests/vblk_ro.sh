#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A read-only device (VIRTIO_BLK_F_RO, e.g. a disk attached with
# blk.read-only=on and role=read-only) is read-only on both paths: it reads,
# and every kind of write is refused.
#
# vmtest guest ours-ro --driver ours
# vmtest disk ro ram size=16M blk.read-only=on dev.bio=off role=read-only
. ./test_common.sh
. ./vblk_lib.sh

name=$(vblk_role_disks read-only | head -n 1)
[ -n "$name" ] || fail "no disk with role=read-only"
dev=$(vblk_dev "$name") || fail "no disk $name"
sys=$(vblk_sys "$dev")

[ "$(cat "$sys/ro")" = 1 ] || fail "$dev: ro is $(cat "$sys/ro")"
[ "$(blockdev --getro "$dev")" = 1 ] || fail "$dev: BLKROGET is not 1"

paths=current
vblk_ours && paths=$(vblk_paths "$sys")
for p in $paths; do
	[ "$p" = current ] || vblk_set_path "$sys" "$p" || fail "cannot switch to $p"
	dd if="$dev" of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null ||
		fail "$p: read failed"
	dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct 2>/dev/null &&
		fail "$p: direct write succeeded"
	dd if=/dev/zero of="$dev" bs=4k count=1 conv=fsync 2>/dev/null &&
		fail "$p: buffered write succeeded"
	blkdiscard -o 0 -l 65536 "$dev" 2>/dev/null &&
		fail "$p: discard succeeded"
	ktap_log "$p: reads, refuses writes"
done
exit $KSFT_PASS
