#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Live migration between hosts whose storage differs: the guest follows
# the medium each destination reports, by itself, under verified I/O.
#
# The disk with role=migrate offers VIRTIO_BLK_F_BIO on memory-backed
# storage (non-rotating as the host detects it; its read latency pinned
# at 45 us with the test-only x-test-read-latency-hint, so that the path
# does not rest on how fast a busy host reads: the bio path).  The guest
# migrates VBLK_MIGRATE_ROUNDS times (default 10) to a "slow" destination
# and back to a "fast" one (2 hops a round), always to a new QEMU process
# on the same image: a slow destination's device reports rotating storage
# (rotation_rate=7200, the series' own property) on odd rounds, a read
# latency of 5 ms (x-test-read-latency-hint=5000) on even ones; a fast
# destination has no extra property: it detects the medium itself and
# has the 45 us of the disk's own properties.  After every hop:
# - the destination's media-info (QMP) shows its own values, not the
#   source's;
# - the disk reaches the destination's path by itself (nothing writes
#   io_path) within a bounded wait, with io_path_reason naming the field:
#   request and "rotation_rate ..." or "read_latency_hint 5000 us ...",
#   bio and "read_latency_hint ..." when fast;
# - the disk with role=control (bio=off) stays on the request path;
# - the negotiated features of every disk are the same as at boot.
# A verifying fio job (crc32c) runs on both disks from the first hop to
# the last and must end without an I/O error or a verification failure.
#
# vmtest guest ours-migrate-medium --driver ours --mem 512M
# vmtest disk mig ram size=16M dev.bio=on dev.x-test-read-latency-hint=45 role=migrate
# vmtest disk ctl ram size=16M dev.bio=off role=control
# vmtest timeout 480
. ./test_common.sh
. ./vblk_lib.sh

vblk_require ours fio
rounds=${VBLK_MIGRATE_ROUNDS:-10}
mig=$(vblk_role_disks migrate)
ctl=$(vblk_role_disks control)
[ -n "$mig" ] && [ -n "$ctl" ] || fail "no disk with role=migrate or role=control"
mig_dev=$(vblk_dev "$mig") || fail "$mig: no disk"
ctl_dev=$(vblk_dev "$ctl") || fail "$ctl: no disk"
mig_sys=$(vblk_sys "$mig_dev")
ctl_sys=$(vblk_sys "$ctl_dev")

features() {
	for b in /sys/block/vd*; do
		echo "${b##*/}=$(cat "$b/device/features")"
	done
}

# on SYS PATH REASON-PATTERN: the disk is on PATH, for a reason that
# matches the shell pattern.
on() {
	[ "$(cat "$1/io_path")" = "$2" ] || return 1
	# shellcheck disable=SC2254
	case $(cat "$1/io_path_reason") in
	$3) return 0 ;;
	esac
	return 1
}

# media_info: the migrate disk's media-info on the current QEMU, in JSON.
media_info() {
	vblk_host qmp "{\"execute\": \"qom-get\", \"arguments\":" \
		"{\"path\": \"/machine/peripheral/$mig\", \"property\": \"media-info\"}}"
}

# has JSON KEY VALUE-PATTERN: the JSON object has "KEY": VALUE with a
# value matching the pattern.
has() {
	# shellcheck disable=SC2254
	case $1 in
	*"\"$2\": "$3,*|*"\"$2\": "$3"}"*) return 0 ;;
	esac
	return 1
}

# hop N WHAT PROPS ROTATION HINT-PATTERN PATH REASON-PATTERN: migrate
# with the destination's device properties PROPS ("" none), then check
# the destination's media-info (its rotation-rate ROTATION, its
# read-latency-hint matching HINT-PATTERN) and wait for the disk's path.
hop() {
	local n=$1 what=$2 props=$3 rot=$4 hint=$5 path=$6 reason=$7 reply info

	reply=$(vblk_host migrate $props) || fail "hop $n ($what): migration failed: $reply"
	on "$mig_sys" "$path" "$reason" ||
		vblk_until 60 on "$mig_sys" "$path" "$reason" ||
		fail "hop $n ($what): $mig is on $(cat "$mig_sys/io_path") ($(cat "$mig_sys/io_path_reason")) 60 s after the migration, want $path ($reason)"
	info=$(media_info) || fail "hop $n ($what): media-info: $info"
	has "$info" rotation-rate "$rot" && has "$info" read-latency-hint "$hint" ||
		fail "hop $n ($what): the destination reports $info, want rotation-rate $rot, read-latency-hint $hint"
	on "$ctl_sys" request "device does not offer VIRTIO_BLK_F_BIO" ||
		fail "hop $n ($what): $ctl left the request path: $(cat "$ctl_sys/io_path") ($(cat "$ctl_sys/io_path_reason"))"
	[ "$(features)" = "$before" ] ||
		fail "hop $n ($what): negotiated features changed: $(features)"
	ktap_log "hop $n ($what): $(cat "$mig_sys/io_path"), $(cat "$mig_sys/io_path_reason"); host $reply"
}

before=$(features)
fast_reason="read_latency_hint 45 us <= * us"
on "$mig_sys" bio "$fast_reason" ||
	fail "$mig: not on the bio path at boot: $(cat "$mig_sys/io_path") ($(cat "$mig_sys/io_path_reason"))"
on "$ctl_sys" request "device does not offer VIRTIO_BLK_F_BIO" ||
	fail "$ctl: not on the request path at boot: $(cat "$ctl_sys/io_path_reason")"
# What the fast storage reports (memory, detected: non-rotating).
info=$(media_info) || fail "media-info: $info"
has "$info" rotation-rate 1 && has "$info" read-latency-hint 45 ||
	fail "$mig: the host does not report non-rotating storage: $info"
ktap_log "at boot: $info"

# Verifying fio, again and again on both disks, until every hop is done.
stop=/tmp/vblk_migrate_medium.stop
rm -f "$stop" /tmp/vblk_migrate_medium.fail.* /tmp/vblk_migrate_medium-*.log
pids=
for name in $mig $ctl; do
	dev=$(vblk_dev "$name")
	(
		trap - EXIT
		while [ ! -e "$stop" ]; do
			fio --name="migm-$name" --filename="$dev" --rw=randwrite \
			    --bs=4k --size=4M --ioengine=libaio --iodepth=8 \
			    --direct=1 --verify=crc32c --verify_backlog=128 \
			    --verify_fatal=1 \
			    --output="/tmp/vblk_migrate_medium-$name.log" ||
				{ touch "/tmp/vblk_migrate_medium.fail.$name"; break; }
		done
	) &
	pids="$pids $!"
done
stop_fio() {
	touch "$stop"
	for pid in $pids; do
		wait "$pid"
	done
}
trap stop_fio EXIT

r=1
n=0
while [ $r -le "$rounds" ]; do
	n=$((n + 1))
	if [ $((r % 2)) = 1 ]; then
		hop $n "round $r, slow: rotating" "$mig.rotation_rate=7200" 7200 45 \
			request "rotation_rate *"
	else
		hop $n "round $r, slow: 5 ms reads" "$mig.x-test-read-latency-hint=5000" \
			1 5000 request "read_latency_hint 5000 us *"
	fi
	n=$((n + 1))
	hop $n "round $r, fast" "" 1 45 bio "$fast_reason"
	r=$((r + 1))
done

trap - EXIT
stop_fio
if ls /tmp/vblk_migrate_medium.fail.* >/dev/null 2>&1; then
	cat /tmp/vblk_migrate_medium-*.log
	fail "fio reported errors across the migrations"
fi
ktap_log "$n hops, verified I/O without an error"
exit $KSFT_PASS
