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

# vblk_hidden SYS: the hidden blk-mq disk behind a bio-capable vdX (the
# other disk of the same virtio device).  Fails for a plain disk, which is
# itself the blk-mq disk, as under the in-tree driver.
vblk_hidden() {
	local d
	for d in "$1"/device/block/*; do
		[ "${d##*/}" = "${1##*/}" ] && continue
		echo "${d##*/}"
		return 0
	done
	return 1
}

# vblk_paths SYS: the paths the disk switches between at run time: both
# on a bio-capable disk, the request path alone on a plain one.
vblk_paths() {
	if vblk_hidden "$1" >/dev/null; then
		echo "$VBLK_PATHS"
	else
		echo request
	fi
}

# vblk_wait SECONDS WHAT COMMAND...: run COMMAND every 0.1 s until it
# succeeds; after SECONDS, fail the test naming WHAT was waited for.
vblk_wait() {
	local secs=$1 what=$2 n=0
	shift 2
	until "$@"; do
		n=$((n + 1))
		[ $n -gt $((secs * 10)) ] && fail "waited $secs s in vain for: $what"
		sleep 0.1
	done
}

# vblk_qstat QUEUES COUNTER [PREFIX]: COUNTER of the driver's debugfs
# QUEUES file (/sys/kernel/debug/virtio_blk/vdX/queues), summed over the
# queues whose name starts with PREFIX (all by default).
vblk_qstat() {
	awk -v f="$2" -v p="$3" 'p == "" || index($1, p) == 1 {
			for (i = 2; i < NF; i += 2) if ($i == f) s += $(i + 1)
		}
		END { print s + 0 }' "$1"
}

# vblk_le32 N: printf escapes of N as 4 little-endian bytes.
vblk_le32() {
	local n=$1 i=0 s=
	while [ $i -lt 4 ]; do
		s="$s\\$(printf %03o $((n & 255)))"
		n=$((n >> 8))
		i=$((i + 1))
	done
	echo "$s"
}

# vblk_write_mbr DEV: an MBR partition table on DEV with one primary Linux
# partition from 1 MiB to the end (the kernel reads it on the next
# re-read: blockdev --rereadpt, or udev after the writer closes DEV).
vblk_write_mbr() {
	local size
	size=$(cat "/sys/block/${1#/dev/}/size") || return 1
	{
		dd if=/dev/zero bs=446 count=1 2>/dev/null
		printf "\\000\\000\\002\\000\\203\\377\\377\\377$(vblk_le32 2048)$(vblk_le32 $((size - 2048)))"
		dd if=/dev/zero bs=48 count=1 2>/dev/null
		printf '\125\252'
	} >/tmp/vblk.mbr
	[ "$(wc -c </tmp/vblk.mbr)" = 512 ] || return 1
	dd if=/tmp/vblk.mbr of="$1" bs=512 count=1 oflag=direct 2>/dev/null
}

# vblk_exited PID: the process is gone (for vblk_wait).
vblk_exited() {
	! kill -0 "$1" 2>/dev/null
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
