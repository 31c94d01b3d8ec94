#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Live migration under I/O: a verifying fio job runs on every data disk
# while the host migrates the guest to a new QEMU process (tools/vmrun's
# "migrate" action, properties for the destination's devices taken from
# VBLK_MIGRATE_PROPS, e.g. "ram.bio=off").  fio must finish without an
# I/O error or a verification failure.
. ./test_common.sh

pids=
for info in $VBLK_DISK_INFO; do
	name=${info%%:*}
	[ "$(vblk_class "$name")" = null ] && continue
	dev=$(vblk_dev "$name") || fail "disk $name missing"
	fio --name="mig-$name" --filename="$dev" --rw=randwrite --bs=4k \
	    --size=24M --ioengine=libaio --iodepth=8 --direct=1 \
	    --verify=crc32c --verify_backlog=256 --verify_fatal=1 \
	    --output="/tmp/fio-$name.log" &
	pids="$pids $!"
done
[ -n "$pids" ] || fail "no data disk"

sleep 1
reply=$(vblk_host migrate $VBLK_MIGRATE_PROPS) || fail "migration failed: $reply"
ktap_log "migrated: $reply"

rc=0
for pid in $pids; do
	wait "$pid" || rc=1
done
if [ "$rc" != 0 ]; then
	cat /tmp/fio-*.log
	fail "fio reported errors across the migration"
fi
grep -h "IOPS=" /tmp/fio-*.log | sed 's/^/# /'
exit $KSFT_PASS
