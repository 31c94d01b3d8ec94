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
# the latency with a configuration change, at any time: within 60 s, one
# look must find the guest's view equal to the host's and the disk on
# the path that view gives.
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

# settled NAME BLK: the guest has read what the host reports now, and
# the disk shows the path, reason and rotational flag that gives (or
# the io_path parameter forces); $why says what differed last.
settled() {
	local h g want path reason wrot
	h=$(host "$1") || { why="no media-info from the host"; return 1; }
	g=$(guest "$2")
	[ "$h" = "$g" ] ||
		{ why="the guest read '$g', the host reports '$h'"; return 1; }
	set -- "$1" "$2" $h
	medium="rotation_rate $3, read_latency_hint $4"
	want=$(auto "$3" "$4")
	path=${want%%|*}
	reason=${want#*|}
	reason=${reason%|*}
	wrot=${want##*|}
	[ "$param" = auto ] || path=$param reason="io_path module parameter"
	state="$(cat "/sys/block/$2/io_path") ($(cat "/sys/block/$2/io_path_reason")), rotational $(cat "/sys/block/$2/queue/rotational")"
	[ "$state" = "$path ($reason), rotational $wrot" ] ||
		{ why="$medium: $state, expected $path ($reason), rotational $wrot"; return 1; }
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

if [ "$VBLK_DRIVER" = ours ]; then
	case $param in
	auto|bio|request) ;;
	*) fail "io_path parameter reads '$param'" ;;
	esac
	vblk_debugfs
fi
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
		why=
		vblk_until 60 settled "$name" "$blk" || fail "$name: after 60 s, $why"
		ktap_log "$name: bit=$got, $medium: $state"
		continue
	fi
	# Without the bit nothing changes: the in-tree driver's path.
	path=request reason="device does not offer VIRTIO_BLK_F_BIO"
	[ "$param" = auto ] || reason="io_path module parameter" path=$param
	state="$(cat "/sys/block/$blk/io_path") ($(cat "/sys/block/$blk/io_path_reason")), rotational $rot"
	[ "$state" = "$path ($reason), rotational 1" ] ||
		fail "$name (no medium information): $state, expected $path ($reason), rotational 1"
	ktap_log "$name: bit=$got, no medium information: $state"
done
exit $KSFT_PASS
