#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Freeze/restore under I/O: suspend to idle with pm_test=devices (devices
# are frozen and restored, no wake-up source needed) while fio writes and
# verifies, once on each path.
#
# vmtest guest ours-capable --driver ours
# vmtest disk d1 ram size=64M dev.num-queues=2 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
# vmtest guest ours-shape --driver ours
# vmtest disk plain ram size=16M dev.bio=on dev.x-test-rotation-rate=7200 \
#   dev.x-test-read-latency-hint=0 role=plain
# vmtest disk hinted ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 role=capable
. ./test_common.sh
. ./vblk_lib.sh

vblk_require /sys/power/pm_test
grep -qw freeze /sys/power/state || fail "needs suspend to idle (freeze in /sys/power/state)"
dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")
vblk_keep_path "$sys"

echo devices >/sys/power/pm_test || fail "cannot set pm_test"
paths=current
vblk_ours && paths=$(vblk_paths "$sys")
for p in $paths; do
	[ "$p" = current ] || vblk_set_path "$sys" "$p" || fail "cannot switch to $p"
	fio --name=pm --filename="$dev" --rw=randrw --bs=4k --iodepth=8 \
	    --ioengine=libaio --direct=1 --size=16M --runtime=8 --time_based \
	    --verify=crc32c --verify_fatal=1 --output=/tmp/vblk_pm.fio >/dev/null 2>&1 &
	fiopid=$!
	vblk_wait 30 "$p: fio I/O in flight" vblk_busy $(vblk_inflight_files "$sys")
	echo freeze >/sys/power/state || { echo none >/sys/power/pm_test; fail "$p: suspend failed"; }
	wait $fiopid || { echo none >/sys/power/pm_test; fail "$p: fio failed across suspend"; }
	grep -q "err= 0" /tmp/vblk_pm.fio || fail "$p: fio reported errors"
	ktap_log "$p: frozen and restored under verified I/O"
done
echo none >/sys/power/pm_test
vblk_put_back_path "$sys"
exit $KSFT_PASS
