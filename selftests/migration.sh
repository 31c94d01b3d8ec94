#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Live migration under I/O: a verifying fio job runs on every data disk
# while the host migrates the guest to a new QEMU process, once per hop
# (tools/vmrun's "migrate" action).  VBLK_MIGRATE_HOPS lists the hops,
# separated by "|", each the destination's device properties
# ("ram.x-test-rotation-rate=7200") or "-" for none; default: one hop.
# fio must finish without an I/O error or a verification failure, and
# the features the guest negotiated must be the same after every hop.
#
# vmtest guest ours-migration --driver ours --env 'VBLK_MIGRATE_HOPS=-|-'
# vmtest disk ram ram
# vmtest disk file file
# vmtest run data_integrity
. ./test_common.sh

features() {
	for b in /sys/block/vd*; do
		echo "${b##*/}=$(cat "$b/device/features")"
	done
}
before=$(features)

# One loop of verifying fio runs per disk, until every hop is done.
stop=/tmp/migration.stop
rm -f "$stop" /tmp/migration.fail.* /tmp/fio-*.log
pids=
for info in $VBLK_DISK_INFO; do
	name=${info%%:*}
	[ "$(vblk_class "$name")" = null ] && continue
	dev=$(vblk_dev "$name") || fail "disk $name missing"
	(
		while [ ! -e "$stop" ]; do
			fio --name="mig-$name" --filename="$dev" --rw=randwrite \
			    --bs=4k --size=8M --ioengine=libaio --iodepth=8 \
			    --direct=1 --verify=crc32c --verify_backlog=256 \
			    --verify_fatal=1 --output="/tmp/fio-$name.log" ||
				{ touch "/tmp/migration.fail.$name"; break; }
		done
	) &
	pids="$pids $!"
done
[ -n "$pids" ] || fail "no data disk"

hops=${VBLK_MIGRATE_HOPS:--}
n=0
while [ -n "$hops" ]; do
	hop=${hops%%|*}
	[ "$hop" = "$hops" ] && hops= || hops=${hops#*|}
	n=$((n + 1))
	[ "$hop" = - ] && hop=
	sleep 1
	reply=$(vblk_host migrate $hop) || fail "migration $n ($hop) failed: $reply"
	ktap_log "migration $n (${hop:-same properties}): $reply"
	[ "$(features)" = "$before" ] ||
		fail "negotiated features changed across migration $n"
done

touch "$stop"
for pid in $pids; do
	wait "$pid"
done
if ls /tmp/migration.fail.* >/dev/null 2>&1; then
	cat /tmp/fio-*.log
	fail "fio reported errors across the migration"
fi
exit $KSFT_PASS
