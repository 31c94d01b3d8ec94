#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Feature negotiation and path choice per disk.  VBLK_EXPECT_BIO lists
# "NAME:0|1" pairs: whether the host should have offered VIRTIO_BLK_F_BIO
# for that disk (given its class and the device's bio property).  Checks
# that the bit was negotiated exactly then and, with our driver, that the
# path in effect, its reason and the rotational flag follow from the bit
# and the io_path module parameter.  VBLK_EXPECT_GAVE_UP names disks whose
# host probe must have given up at its 20 ms budget with no read done
# (storage that takes a second per read), read over QMP.
. ./test_common.sh

[ -n "$VBLK_EXPECT_BIO" ] || fail "VBLK_EXPECT_BIO not set"
param=$(cat /sys/module/virtio_blk/parameters/io_path 2>/dev/null)

for name in $VBLK_EXPECT_GAVE_UP; do
	args="{\"path\": \"/machine/peripheral/$name\", \"property\": \"bio-probe\"}"
	probe=$(vblk_host qmp "{\"execute\": \"qom-get\", \"arguments\": $args}") ||
		fail "$name: qom-get: $probe"
	ktap_log "$name: host probe $probe"
	case $probe in
	*'"reads": 0,'*'"reason": "a probe read outlasted the 20 ms budget"'*) ;;
	*) fail "$name: the host probe did not give up at its budget" ;;
	esac
done

for pair in $VBLK_EXPECT_BIO; do
	name=${pair%%:*}
	want=${pair#*:}
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
	case $param in
	auto)	if [ "$want" = 1 ]; then
			path=bio reason="host hint"
		else
			path=request reason="module default"
		fi ;;
	bio|request) path=$param reason="module parameter" ;;
	*)	fail "io_path parameter reads '$param'" ;;
	esac
	[ "$(cat "/sys/block/$blk/io_path")" = "$path" ] ||
		fail "$name: io_path is $(cat "/sys/block/$blk/io_path"), expected $path"
	[ "$(cat "/sys/block/$blk/io_path_reason")" = "$reason" ] ||
		fail "$name: reason '$(cat "/sys/block/$blk/io_path_reason")', expected '$reason'"
	[ "$rot" = $((1 - want)) ] ||
		fail "$name: rotational=$rot with the bit $([ "$want" = 1 ] || echo not) offered"
	ktap_log "$name: bit=$got path=$path ($reason) rotational=$rot"
done
exit $KSFT_PASS
