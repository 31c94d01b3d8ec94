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
# and exits non-zero when any job failed.
#
# With BENCH_VARIANTS (e.g. "stock request bio auto", in a guest booted
# with vmrun's driver "both") it runs every job once per variant, in that
# order, before the next job, and reports it as ID/VARIANT: before each
# run every virtio disk is rebound, to the stock virtio_blk for "stock",
# else to our module ($VBLK_MODULE) with its io_path parameter set to
# the variant.  Runs of the variants are then seconds apart, not a boot.
#
# With BENCH_KALLSYMS=1 it then prints the kernel's text symbols for
# tools/bench/profile.py, gzipped and base64-encoded between KSYMS-BEGIN
# and KSYMS-END.  With BENCH_SNAP=1 it asks the host for "snap ID-start"
# and "snap ID-end" around each fio run (instruction counter snapshots,
# see tools/bench/profile.py).
. /selftests/test_common.sh

CELLS=${BENCH_CELLS:-/vblk/files/cells}
VIRTIO_BLK_DEVICE_ID=0x0002

# bench_use VARIANT: bind every virtio block device to the variant's
# driver and wait until all the disks are back.
bench_use() {
	local drv=$VBLK_MODULE d

	if [ "$1" = stock ]; then
		drv=virtio_blk
	elif ! echo "$1" >"/sys/module/$VBLK_MODULE/parameters/io_path"; then
		return 1
	fi
	for d in /sys/bus/virtio/devices/*; do
		[ "$(cat "$d/device")" = $VIRTIO_BLK_DEVICE_ID ] || continue
		if [ -e "$d/driver" ]; then
			echo "${d##*/}" >"$d/driver/unbind" || return 1
		fi
	done
	for d in /sys/bus/virtio/devices/*; do
		[ "$(cat "$d/device")" = $VIRTIO_BLK_DEVICE_ID ] || continue
		echo "${d##*/}" >"/sys/bus/virtio/drivers/$drv/bind" || return 1
	done
	vblk_wait_disks
}

# cpu_ticks: busy and idle time of all CPUs so far, in USER_HZ ticks
# (/proc/stat: busy is user, nice, system, irq, softirq and steal).
cpu_ticks() {
	awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat
}

# run_job ID DISK FIO-ARGUMENTS...: one fio run and its report, with the
# CPU time the guest spent around it (fio's start and exit included).
run_job() {
	local id=$1 disk=$2 dev blk path reason bit status t0 t1
	shift 2
	if ! dev=$(vblk_dev "$disk"); then
		echo "BENCH-BEGIN $id dev=none"
		echo "BENCH-END $id status=2"
		return 1
	fi
	blk=${dev#/dev/}
	# The stock driver has no io_path attribute: it always uses blk-mq.
	path=$(cat "/sys/block/$blk/io_path" 2>/dev/null || echo stock)
	reason=$(cat "/sys/block/$blk/io_path_reason" 2>/dev/null || echo -)
	# virtio's features file: one character per bit, bit 0 first.
	bit=$(cut -c$((VIRTIO_BLK_F_BIO + 1)) "/sys/block/$blk/device/features")
	t0=$(cpu_ticks)
	if [ "${BENCH_SNAP:-0}" = 1 ] && ! vblk_host snap "$id-start" >/dev/null; then
		echo "BENCH-BEGIN $id dev=$dev"
		echo "BENCH-END $id status=3"
		return 1
	fi
	fio --name="$id" --filename="$dev" "$@" \
		--output-format=json --output=/tmp/fio.json >/tmp/fio.err 2>&1
	status=$?
	if [ "${BENCH_SNAP:-0}" = 1 ] && ! vblk_host snap "$id-end" >/dev/null; then
		status=3
	fi
	t1=$(cpu_ticks)
	echo "BENCH-BEGIN $id dev=$dev path=$path reason=$reason bio_bit=$bit" \
		"cpu_busy=$((${t1% *} - ${t0% *})) cpu_idle=$((${t1#* } - ${t0#* }))"
	if [ "$status" = 0 ]; then
		cat /tmp/fio.json
	else
		sed 's/^/# /' /tmp/fio.err
	fi
	echo "BENCH-END $id status=$status"
	[ "$status" = 0 ]
}

rc=0
while read -r id disk args; do
	[ -n "$id" ] || continue
	if [ -z "${BENCH_VARIANTS:-}" ]; then
		# shellcheck disable=SC2086
		run_job "$id" "$disk" $args || rc=1
		continue
	fi
	for v in $BENCH_VARIANTS; do
		if ! bench_use "$v"; then
			echo "BENCH-BEGIN $id/$v dev=none"
			echo "# binding the disks for $v failed"
			echo "BENCH-END $id/$v status=4"
			rc=1
			continue
		fi
		# shellcheck disable=SC2086
		run_job "$id/$v" "$disk" $args || rc=1
	done
done <"$CELLS"
if [ "${BENCH_KALLSYMS:-0}" = 1 ]; then
	echo 0 >/proc/sys/kernel/kptr_restrict
	echo KSYMS-BEGIN
	grep ' [tT] ' /proc/kallsyms | gzip -c | base64
	echo KSYMS-END
fi
exit $rc
