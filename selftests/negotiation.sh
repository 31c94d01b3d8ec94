#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Feature negotiation and the path choice per disk, against what the host
# reports.  Each disk with an expect.bio=0|1 key says whether the device
# offers VIRTIO_BLK_F_BIO (its bio property).  Checks that the bit was
# negotiated exactly then (never by the in-tree driver) and, with our
# driver and the bit, that the medium the guest read (debugfs
# vdX/medium) is the one the host reports (the device's media-info over
# QMP: rotation-rate and read-latency-hint, whatever the host detected or
# measured on that storage), and that the path, its io_path_reason and
# the rotational flag are what auto gives for it, or what the io_path
# module parameter forces.  Without the bit: the request path, "device
# does not offer VIRTIO_BLK_F_BIO" and rotational, as the in-tree driver.
# The host may still be measuring when the guest probes and then reports
# the latency with a configuration change: the guest's view must match
# the host's within 60 s.
#
# vmtest guest probe-medium --driver ours
# vmtest disk ram ram dev.bio=on expect.bio=1
# vmtest disk file file dev.bio=on expect.bio=1
# vmtest disk loopnr loop-nonrot dev.bio=on expect.bio=1
# vmtest disk looprot loop-rot dev.bio=on expect.bio=1
# vmtest disk part part dev.bio=on expect.bio=1
# vmtest disk nullfast null dev.bio=on expect.bio=1
# vmtest disk nullslow null latency-ns=2000000 dev.bio=on expect.bio=1
# vmtest disk never ram dev.bio=off expect.bio=0
#
# The io_path parameter against the medium.
# vmtest guest probe-io-path-bio --driver ours --module-param io_path=bio
# vmtest disk ram ram dev.bio=on expect.bio=1
# vmtest disk file file expect.bio=0
# vmtest run data_integrity
# vmtest guest probe-io-path-request --driver ours --module-param io_path=request
# vmtest disk ram ram dev.bio=on expect.bio=1
# vmtest disk file file expect.bio=0
# vmtest run data_integrity
#
# The in-tree driver never negotiates the bit.
# vmtest guest probe-stock-driver --driver stock
# vmtest disk ram ram dev.bio=on expect.bio=0
# vmtest disk file file expect.bio=0
# vmtest run data_integrity
. ./test_common.sh
. ./vblk_lib.sh

disks=$(vblk_expect_disks bio)
[ -n "$disks" ] || fail "no disk has an expect.bio key"
param=$(cat /sys/module/virtio_blk/parameters/io_path 2>/dev/null)
limit=$(cat /sys/module/virtio_blk/parameters/bio_latency_us 2>/dev/null)

# host NAME: "ROTATION HINT" as the device of disk NAME reports them.
host() {
	local r
	r=$(vblk_host qmp "{\"execute\": \"qom-get\", \"arguments\": {\"path\": \"/machine/peripheral/$1\", \"property\": \"media-info\"}}") ||
		return 1
	echo "$(echo "$r" | sed -n 's/.*"rotation-rate": *\([0-9]*\).*/\1/p')" \
	     "$(echo "$r" | sed -n 's/.*"read-latency-hint": *\([0-9]*\).*/\1/p')"
}

# guest BLK: "ROTATION HINT" as the driver last read them.
guest() {
	echo "$(sed -n 's/^rotation_rate //p' "/sys/kernel/debug/virtio_blk/$1/medium")" \
	     "$(sed -n 's/^read_latency_hint //p' "/sys/kernel/debug/virtio_blk/$1/medium")"
}

# same NAME BLK: the guest has read what the host reports now.
same() {
	local h
	h=$(host "$1") || return 1
	[ "$h" = "$(guest "$2")" ] && seen="$h"
}

# state_is BLK PATH/REASON: the disk shows that path and reason.
state_is() {
	[ "$(cat "/sys/block/$1/io_path")/$(cat "/sys/block/$1/io_path_reason")" = "$2" ]
}

# auto ROTATION HINT: "PATH|REASON|ROTATIONAL" that auto gives.
auto() {
	if [ "$1" -ge 1025 ] && [ "$1" -le 65534 ]; then
		echo "request|rotation_rate $1 rpm (rotating)|1"
	elif [ "$1" = 0 ]; then
		echo "request|rotation_rate not reported|1"
	elif [ "$1" != 1 ]; then
		echo "request|rotation_rate $(printf 0x%04x "$1") reserved (not reported)|1"
	elif [ "$2" = 0 ]; then
		echo "bio|read_latency_hint not reported yet|0"
	elif [ "$2" -le "$limit" ]; then
		echo "bio|read_latency_hint $2 us <= $limit us|0"
	else
		echo "request|read_latency_hint $2 us > $limit us|0"
	fi
}

[ "$VBLK_DRIVER" = ours ] && vblk_debugfs
for name in $disks; do
	want=$(vblk_expect "$name" bio)
	case $want in
	0|1) ;;
	*) fail "$name: expect.bio=$want: want 0 or 1" ;;
	esac
	dev=$(vblk_dev "$name") || fail "disk $name missing"
	blk=${dev#/dev/}
	got=$(cut -c$((VIRTIO_BLK_F_BIO + 1)) "/sys/block/$blk/device/features")
	[ "$got" = "$want" ] ||
		fail "$name: VIRTIO_BLK_F_BIO negotiated=$got, expected $want"
	rot=$(cat "/sys/block/$blk/queue/rotational")
	if [ "$VBLK_DRIVER" != ours ]; then
		ktap_log "$name: bit=$got rotational=$rot (stock driver)"
		continue
	fi
	if [ "$got" = 1 ]; then
		seen=
		vblk_until 60 same "$name" "$blk" ||
			fail "$name: the guest read '$(guest "$blk")', the host reports '$(host "$name")'"
		set -- $seen
		medium="rotation_rate $1, read_latency_hint $2"
		expect=$(auto "$1" "$2")
	else
		medium="no medium information"
		expect="request|device does not offer VIRTIO_BLK_F_BIO|1"
	fi
	path=${expect%%|*}
	reason=${expect#*|}
	reason=${reason%|*}
	wrot=${expect##*|}
	case $param in
	auto) ;;
	bio|request) path=$param reason="io_path module parameter" ;;
	*) fail "io_path parameter reads '$param'" ;;
	esac
	# A configuration change may have just moved the disk: bounded wait.
	vblk_until 10 state_is "$blk" "$path/$reason" ||
		fail "$name ($medium): io_path $(cat "/sys/block/$blk/io_path") ($(cat "/sys/block/$blk/io_path_reason")), expected $path ($reason)"
	[ "$(cat "/sys/block/$blk/queue/rotational")" = "$wrot" ] ||
		fail "$name ($medium): rotational $(cat "/sys/block/$blk/queue/rotational"), expected $wrot"
	ktap_log "$name: bit=$got, $medium: $path ($reason), rotational $wrot"
done
exit $KSFT_PASS
