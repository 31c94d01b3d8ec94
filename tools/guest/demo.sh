#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest half of "make demo" (tools/vblk/demo.py), in a guest booted with
# vmrun's driver "both": the stock virtio_blk has every disk at boot, and
# our module, under another name ($VBLK_MODULE), waits beside it.
#
# First the host is asked for its view of the disks ("vblk_host
# demo-host": it answers once its probe of every disk has reported),
# then every virtio disk is bound to our module with io_path=auto, the
# choice it makes by itself at probe; per disk:
#   DEMO-AUTO NAME dev=/dev/vdX driver=D path=P bio_bit=0|1 rotational=0|1 reason=WHY
# Then, for each driver of DEMO_DRIVERS (default "stock request bio":
# the stock virtio_blk, ours with io_path=request, ours with io_path=bio),
# every disk is rebound to it and each fio job of the file $DEMO_JOBS
# (default /vblk/files/demo-jobs; lines "JOB FIO-ARGUMENTS...") runs on
# each disk for $DEMO_SECONDS seconds:
#   DEMO-RUN NAME DRIVER JOB dev=/dev/vdX driver=D path=P status=S iops=N
# (path "stock": the in-tree driver has no io_path file; status is fio's
# exit status, or 1 when its report has an error; iops its read IOPS).
# A driver the disks cannot be bound to gives "DEMO-BIND DRIVER failed"
# and no runs.  At the end the host is asked for its view again.  Exits
# non-zero when a binding, a run or a request to the host failed.
. /selftests/test_common.sh

VIRTIO_BLK_DEVICE_ID=0x0002
JOBS=${DEMO_JOBS:-/vblk/files/demo-jobs}

# demo_use auto|stock|request|bio: bind every virtio block device to the
# stock virtio_blk ("stock") or to ours with that io_path, and wait until
# all the disks are back.
demo_use() {
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

# facts BLK: "driver=D path=P" of /sys/block/BLK (path "stock" without
# an io_path file, the in-tree driver's case).
facts() {
	local drv path

	drv=$(readlink "/sys/block/$1/device/driver")
	path=$(cat "/sys/block/$1/io_path" 2>/dev/null || echo stock)
	echo "driver=${drv##*/} path=$path"
}

rc=0
# The host's view of every disk, once its probe has reported: what our
# module finds when it binds, so that its choice follows the host's view.
if ! reply=$(vblk_host demo-host); then
	echo "# the host's view: $reply"
	rc=1
fi
if demo_use auto; then
	for info in $VBLK_DISK_INFO; do
		name=${info%%:*}
		if ! dev=$(vblk_dev "$name"); then
			echo "DEMO-AUTO $name dev=none"
			rc=1
			continue
		fi
		blk=${dev#/dev/}
		# virtio's features file: one character per bit, bit 0 first.
		bit=$(cut -c$((VIRTIO_BLK_F_BIO + 1)) "/sys/block/$blk/device/features")
		echo "DEMO-AUTO $name dev=$dev $(facts "$blk") bio_bit=$bit" \
			"rotational=$(cat "/sys/block/$blk/queue/rotational")" \
			"reason=$(cat "/sys/block/$blk/io_path_reason" 2>/dev/null || echo -)"
	done
else
	echo "DEMO-BIND auto failed"
	rc=1
fi

for drv in ${DEMO_DRIVERS:-stock request bio}; do
	if ! demo_use "$drv"; then
		echo "DEMO-BIND $drv failed"
		rc=1
		continue
	fi
	while read -r job args; do
		[ -n "$job" ] || continue
		for info in $VBLK_DISK_INFO; do
			name=${info%%:*}
			if ! dev=$(vblk_dev "$name"); then
				echo "DEMO-RUN $name $drv $job dev=none status=2"
				rc=1
				continue
			fi
			# Terse output: field 5 is the error, field 8 the read IOPS.
			# shellcheck disable=SC2086
			fio --name="demo-$job" --filename="$dev" $args --time_based \
				--runtime="${DEMO_SECONDS:-3}" --minimal \
				</dev/null >/tmp/demo.fio 2>/tmp/demo.err
			status=$?
			iops=$(cut -d';' -f8 /tmp/demo.fio)
			# fio can exit 0 with an error in its report.
			if [ "$status" = 0 ] && [ "$(cut -d';' -f5 /tmp/demo.fio)" != 0 ]; then
				status=1
			fi
			[ "$status" = 0 ] || sed 's/^/# /' /tmp/demo.err /tmp/demo.fio
			echo "DEMO-RUN $name $drv $job dev=$dev $(facts "${dev#/dev/}")" \
				"status=$status iops=${iops:-none}"
			[ "$status" = 0 ] || rc=1
		done
	done <"$JOBS"
done
# Again at the end: nothing may have changed the medium meanwhile.
if ! reply=$(vblk_host demo-host); then
	echo "# the host's view at the end: $reply"
	rc=1
fi
exit $rc
