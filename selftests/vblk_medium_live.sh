#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The driver follows the medium when the device changes rotation_rate and
# read_latency_hint and sends a configuration change notification:
# - a bio-capable disk under auto switches bio -> request -> bio as the
#   medium becomes rotating, slow, not measured and fast again, under
#   verified I/O, with io_path_reason naming the field each time, the
#   rotational flag of vdX and of the hidden disk following, and one log
#   line per switch;
# - a plain disk (request path at probe) stays a plain disk on the request
#   path when the medium asks for the bio path, says "bio path on rebind"
#   in io_path_reason, and logs that once for two such changes;
# - a disk the user wrote "bio" to stays on the bio path when the medium
#   becomes rotating (the rotational flag still follows); "auto" written
#   then gives the medium's path at once.
#
# The changes come from QEMU's virtio-blk (bio=on): its test-only
# x-test-rotation-rate and x-test-read-latency-hint properties, set over
# QMP on the running device, each send a configuration change
# notification.  One field changes at a time, in an order that makes no
# switch beyond the one counted.  The disks are told apart by role.
#
# vmtest guest ours-medium-live --driver ours
# vmtest disk follow ram size=32M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 role=follow
# vmtest disk plain ram size=16M dev.bio=on dev.x-test-rotation-rate=7200 \
#   dev.x-test-read-latency-hint=0 role=plain
# vmtest disk pinned ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 role=pinned
. ./test_common.sh
. ./vblk_lib.sh

vblk_require ours fio
limit=$(cat /sys/module/virtio_blk/parameters/bio_latency_us)
done_flag=/tmp/vblk_medium_live.done

# disk ROLE: sets name, dev and sys of the disk with that role.
disk() {
	name=$(vblk_role_disks "$1")
	[ -n "$name" ] || fail "no disk with role=$1"
	dev=$(vblk_dev "$name") || fail "$name: no disk"
	sys=$(vblk_sys "$dev")
}

# is SYS PATH REASON ROTATIONAL: the disk shows exactly that (and so does
# its hidden disk's rotational flag, if it has one).
is() {
	local h
	[ "$(cat "$1/io_path")" = "$2" ] &&
		[ "$(cat "$1/io_path_reason")" = "$3" ] &&
		[ "$(cat "$1/queue/rotational")" = "$4" ] || return 1
	h=$(vblk_hidden "$1") || return 0
	[ "$(cat "/sys/block/$h/queue/rotational")" = "$4" ]
}

# change NAME SYS SETTINGS PATH REASON ROTATIONAL: have the device of disk
# NAME change its medium, one rotation=N or latency-hint=US of SETTINGS
# after the other, and wait for the disk to show the end result.
change() {
	local kv prop r
	for kv in $3; do
		case ${kv%%=*} in
		rotation) prop=x-test-rotation-rate ;;
		latency-hint) prop=x-test-read-latency-hint ;;
		*) fail "change: bad setting $kv" ;;
		esac
		r=$(vblk_host qmp "{\"execute\": \"qom-set\", \"arguments\": {\"path\": \"/machine/peripheral/$1\", \"property\": \"$prop\", \"value\": ${kv#*=}}}") ||
			fail "$1: qom-set $prop=${kv#*=}: $r"
	done
	vblk_until 30 is "$2" "$4" "$5" "$6" ||
		fail "$1: after '$3': io_path $(cat "$2/io_path"), reason '$(cat "$2/io_path_reason")', rotational $(cat "$2/queue/rotational"); want $4, '$5', $6"
	ktap_log "$1: $3 -> $4 path ($5), rotational $6"
}

switches() {
	dmesg | grep -c "\[$1\] auto: $2 path -> $3 path"
}

# -- a bio-capable disk follows, under verified I/O -----------------------
disk follow
f_name=$name f_dev=$dev f_sys=$sys
is "$f_sys" bio "read_latency_hint 45 us <= $limit us" 0 ||
	fail "$f_name: not on the bio path at probe ($(cat "$f_sys/io_path_reason"))"
vblk_hidden "$f_sys" >/dev/null || fail "$f_name: not bio-capable"
to_request=$(switches "${f_sys##*/}" bio request)
to_bio=$(switches "${f_sys##*/}" request bio)

rm -f $done_flag
(
	trap - EXIT
	vblk_wait 30 "$f_name: I/O in flight" vblk_busy $(vblk_inflight_files "$f_sys")
	change "$f_name" "$f_sys" "rotation=7200" request \
		"rotation_rate 7200 rpm (rotating)" 1
	change "$f_name" "$f_sys" "latency-hint=5000 rotation=1" request \
		"read_latency_hint 5000 us > $limit us" 0
	change "$f_name" "$f_sys" "latency-hint=0" bio \
		"read_latency_hint not reported yet" 0
	change "$f_name" "$f_sys" "rotation=0" request \
		"rotation_rate not reported" 1
	change "$f_name" "$f_sys" "latency-hint=45 rotation=1" bio \
		"read_latency_hint 45 us <= $limit us" 0
	: >$done_flag
) &
vblk_fio_until $! $done_flag 200 "$f_name: following the medium" medium-live "$f_dev" \
	--ioengine=libaio --iodepth=16 --size=16M --verify_backlog=64
[ $(($(switches "${f_sys##*/}" bio request) - to_request)) = 2 ] &&
	[ $(($(switches "${f_sys##*/}" request bio) - to_bio)) = 2 ] ||
	fail "$f_name: want 2 logged switches each way"
ktap_log "$f_name: 4 switches under verified I/O ($vblk_fio_runs fio runs)"

# -- a plain disk stays one and logs once ------------------------------------
disk plain
vblk_hidden "$sys" >/dev/null && fail "$name: not a plain disk"
is "$sys" request "rotation_rate 7200 rpm (rotating)" 1 ||
	fail "$name: unexpected start ($(cat "$sys/io_path_reason"))"
rebind="${sys##*/}] auto now asks for the bio path"
[ "$(dmesg | grep -c "$rebind")" = 0 ] || fail "$name: logged before any change"
change "$name" "$sys" "latency-hint=45 rotation=1" request \
	"read_latency_hint 45 us <= $limit us, bio path on rebind (plain blk-mq disk)" 0
change "$name" "$sys" "latency-hint=60" request \
	"read_latency_hint 60 us <= $limit us, bio path on rebind (plain blk-mq disk)" 0
[ "$(dmesg | grep -c "$rebind")" = 1 ] ||
	fail "$name: want one 'bio path on rebind' log line, have $(dmesg | grep -c "$rebind")"
vblk_hidden "$sys" >/dev/null && fail "$name: became bio-capable"
[ -e "$sys/queue/scheduler" ] || fail "$name: lost its scheduler"
vblk_fio_verified 60 medium-live-plain "$dev" --size=4M
change "$name" "$sys" "rotation=7200" request \
	"rotation_rate 7200 rpm (rotating)" 1

# -- the user's choice wins over the medium ---------------------------------
disk pinned
vblk_set_path "$sys" bio || fail "$name: io_path bio did not take"
change "$name" "$sys" "rotation=7200" bio "io_path written by user" 1
vblk_fio_verified 60 medium-live-pinned "$dev" --size=4M
echo auto >"$sys/io_path" || fail "$name: writing auto failed"
is "$sys" request "rotation_rate 7200 rpm (rotating)" 1 ||
	fail "$name: auto did not return to the medium's path ($(cat "$sys/io_path"), $(cat "$sys/io_path_reason"))"
change "$name" "$sys" "rotation=1" bio "read_latency_hint 45 us <= $limit us" 0
exit $KSFT_PASS
