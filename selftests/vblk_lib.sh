# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the vblk_* tests of the adaptive virtio_blk.  Source after
# test_common.sh.

VBLK_PATHS="bio request"

# vblk_ours: the adaptive driver (not the in-tree one) is loaded.
vblk_ours() {
	[ -e /sys/module/virtio_blk/parameters/io_path ]
}

# vblk_sys DEV: sysfs directory of /dev/vdX.
vblk_sys() {
	echo "/sys/block/${1#/dev/}"
}

# vblk_data_disk: /dev node of the first disk that keeps data (not null)
# and whose path no udev rule pins (not pin-*, see vblk_udev.sh).
vblk_data_disk() {
	local info name rest
	for info in $VBLK_DISK_INFO; do
		name=${info%%:*}
		rest=${info#*:}
		[ "${rest%%:*}" = null ] && continue
		case $name in pin-*) continue ;; esac
		vblk_dev "$name" && return 0
	done
	return 1
}

# vblk_host_bit SYS: 1 if the device offered (and so negotiated)
# VIRTIO_BLK_F_BIO, else 0.
vblk_host_bit() {
	cut -c$((${VIRTIO_BLK_F_BIO:-20} + 1)) "$1/device/features"
}

# vblk_set_path SYS PATH: switch a disk's I/O path and check it took.
vblk_set_path() {
	echo "$2" >"$1/io_path" || return 1
	[ "$(cat "$1/io_path")" = "$2" ]
}

# vblk_modparam NAME: value given to the module at load, if any.
vblk_modparam() {
	local p
	for p in $VBLK_MODPARAMS; do
		[ "${p%%=*}" = "$1" ] && { echo "${p#*=}"; return 0; }
	done
	return 1
}

# vblk_settle: let udev finish what it is doing (probing a disk that just
# appeared, changed path or was closed after writing), if it runs at all.
vblk_settle() {
	command -v udevadm >/dev/null && udevadm settle --timeout=10
}

# vblk_unload: rmmod virtio_blk; udev may still be probing a disk that
# just appeared, so settle and retry briefly.
vblk_unload() {
	local n=0
	vblk_settle
	while ! rmmod virtio_blk 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt 50 ] && return 1
		sleep 0.1
	done
}

# vblk_fio_verified SECONDS NAME DEV FIO-ARGS...: a 4k write job on DEV
# (random unless FIO-ARGS say otherwise) that reads back and checks
# every block (crc32c).  Fails the test when fio has not finished after
# SECONDS (killed: an I/O that never completes), fails, or reports an
# error.  fio's report stays in /tmp/vblk_fio.out (a file, not a pipe: a
# killed fio stuck in the kernel must not hold the test's output).
vblk_fio_verified() {
	local secs=$1 name=$2 dev=$3
	shift 3
	timeout -s KILL "$secs" fio --output=/tmp/vblk_fio.out --name="$name" \
		--filename="$dev" --direct=1 --rw=randwrite --bs=4k \
		--verify=crc32c --verify_fatal=1 "$@" >/tmp/vblk_fio.err 2>&1
	case $? in
	0) ;;
	137) fail "$name: fio did not finish in $secs s (an I/O never completed?)" ;;
	*) cat /tmp/vblk_fio.out /tmp/vblk_fio.err; fail "$name: fio failed" ;;
	esac
	grep -q "err= 0" /tmp/vblk_fio.out ||
		{ cat /tmp/vblk_fio.out; fail "$name: fio reported errors"; }
}
