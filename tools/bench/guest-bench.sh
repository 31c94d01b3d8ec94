#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest half of tools/bench/bench.py.  Runs the fio jobs listed in
# /vblk/files/cells, one per line: "ID DISK FIO-ARGUMENTS...", where DISK
# is the name (serial) of a disk the runner attached.  For each job it
# prints
#   BENCH-BEGIN ID dev=/dev/vdX path=P reason=R bio_bit=0|1
#   <fio's JSON report>
#   BENCH-END ID status=S
# and exits non-zero when any job failed.  With BENCH_KALLSYMS=1 it then
# prints the kernel's text symbols for tools/bench/profile.py, gzipped and
# base64-encoded between KSYMS-BEGIN and KSYMS-END.  With BENCH_SNAP=1 it
# asks the host for "snap ID-start" and "snap ID-end" around each fio run
# (instruction counter snapshots, see tools/bench/profile.py).
. /selftests/test_common.sh

CELLS=${BENCH_CELLS:-/vblk/files/cells}
rc=0
while read -r id disk args; do
	[ -n "$id" ] || continue
	if ! dev=$(vblk_dev "$disk"); then
		echo "BENCH-BEGIN $id dev=none"
		echo "BENCH-END $id status=2"
		rc=1
		continue
	fi
	blk=${dev#/dev/}
	# The stock driver has no io_path attribute: it always uses blk-mq.
	path=$(cat "/sys/block/$blk/io_path" 2>/dev/null || echo stock)
	reason=$(cat "/sys/block/$blk/io_path_reason" 2>/dev/null || echo -)
	# virtio's features file: one character per bit, bit 0 first.
	bit=$(cut -c$((VIRTIO_BLK_F_BIO + 1)) "/sys/block/$blk/device/features")
	if [ "${BENCH_SNAP:-0}" = 1 ] && ! vblk_host snap "$id-start" >/dev/null; then
		echo "BENCH-BEGIN $id dev=$dev"
		echo "BENCH-END $id status=3"
		rc=1
		continue
	fi
	# shellcheck disable=SC2086
	fio --name="$id" --filename="$dev" $args \
		--output-format=json --output=/tmp/fio.json >/tmp/fio.err 2>&1
	status=$?
	if [ "${BENCH_SNAP:-0}" = 1 ] && ! vblk_host snap "$id-end" >/dev/null; then
		status=3
	fi
	echo "BENCH-BEGIN $id dev=$dev path=$path reason=$reason bio_bit=$bit"
	if [ "$status" = 0 ]; then
		cat /tmp/fio.json
	else
		sed 's/^/# /' /tmp/fio.err
		rc=1
	fi
	echo "BENCH-END $id status=$status"
done <"$CELLS"
if [ "${BENCH_KALLSYMS:-0}" = 1 ]; then
	echo 0 >/proc/sys/kernel/kptr_restrict
	echo KSYMS-BEGIN
	grep ' [tT] ' /proc/kallsyms | gzip -c | base64
	echo KSYMS-END
fi
exit $rc
