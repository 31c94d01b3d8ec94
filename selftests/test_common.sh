# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the shell selftests.  Source it; the tests run in a guest
# booted by tools/vmrun, whose /vblk/run.conf names the disks.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

[ -r /vblk/run.conf ] && . /vblk/run.conf

# vblk_dev NAME: the /dev node of the disk the runner attached as NAME.
vblk_dev() {
	local s
	for s in /sys/block/vd*/serial; do
		[ -r "$s" ] || continue
		if [ "$(cat "$s")" = "$1" ]; then
			s=${s%/serial}
			echo "/dev/${s##*/}"
			return 0
		fi
	done
	return 1
}

# vblk_wait_disks: wait up to 20 s until the $VBLK_NDISKS disks the
# runner attached are all there (probe is asynchronous); say how many
# came and fail if not.
vblk_wait_disks() {
	local n=0

	while [ "$(ls -d /sys/block/vd* 2>/dev/null | wc -l)" -lt "$VBLK_NDISKS" ]; do
		n=$((n + 1))
		if [ "$n" -gt 200 ]; then
			echo "# only $(ls -d /sys/block/vd* 2>/dev/null | wc -l) of $VBLK_NDISKS disks appeared"
			return 1
		fi
		sleep 0.1
	done
}

# vblk_role_disks ROLE: the names of the disks given role=ROLE, one per
# line (tools/vmrun's disk key for what a test does with a disk).
vblk_role_disks() {
	local d
	for d in $VBLK_DISK_ROLES; do	# name:role
		[ "${d#*:}" = "$1" ] && echo "${d%%:*}"
	done
	return 0
}

# vblk_expect NAME KEY: what the test should find on disk NAME, from its
# expect.KEY=VALUE disk key; fails when the disk has no such key.
vblk_expect() {
	local d
	for d in $VBLK_DISK_EXPECT; do	# name:key=value
		case $d in
		"$1:$2="*) echo "${d#*=}"; return 0 ;;
		esac
	done
	return 1
}

# vblk_expect_disks KEY: the names of the disks with an expect.KEY disk
# key, one per line, in the order they were attached.
vblk_expect_disks() {
	local d
	for d in $VBLK_DISK_EXPECT; do
		case $d in
		*:"$1="*) echo "${d%%:*}" ;;
		esac
	done
	return 0
}

# vblk_class NAME: the disk class (ram, file, null, ...) NAME was made as.
vblk_class() {
	local d rest
	for d in $VBLK_DISK_INFO; do	# name:class:bytes
		rest=${d#*:}
		[ "${d%%:*}" = "$1" ] && { echo "${rest%%:*}"; return 0; }
	done
	return 1
}

# vblk_host ACTION ARGS: ask the host (tools/vmrun) to do something, e.g.
# "device_del NAME" or "qmp {json}".  Prints the reply's JSON; fails when
# the host reports a failure.
vblk_host() {
	local reply rc
	echo "VBLK-HOST $*" >/dev/ttyS1
	read -r reply </dev/ttyS1
	set -- $reply
	rc=$2
	shift 2
	echo "$*"
	[ "$rc" = 0 ]
}

ktap_log() { echo "# $*"; }
fail() { echo "# FAIL: $*"; exit $KSFT_FAIL; }
