#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Feature negotiation and path choice per disk.  Each disk with an
# expect.bio=0|1 key says whether the host should have offered
# VIRTIO_BLK_F_BIO for it (given its class and the device's bio
# property).  Checks that the bit was negotiated exactly then and, with our
# driver, that the path in effect, its reason and the rotational flag
# follow from the bit and the io_path module parameter.  A disk with
# expect.probe=gave-up is one whose host probe must have given up at its
# 20 ms budget with no read done (storage that takes a second per read),
# read over QMP.
#
# The host's probe per storage class, and the guest's choice; "stuck"
# answers each read in 1 s.  The probe's latency threshold is 300 us by
# default; a tmpfs or loop read measured 30 us to over 5 ms on a loaded
# machine, so disks that test the storage kind get 100 ms, and null-co
# (0.4 us against 2 ms) tests the threshold itself.
# vmtest guest probe-auto --driver ours
# vmtest disk ram ram dev.bio-latency-threshold-us=100000 expect.bio=1
# vmtest disk file file dev.bio-latency-threshold-us=100000 expect.bio=0
# vmtest disk loopnr loop-nonrot dev.bio-latency-threshold-us=100000 expect.bio=1
# vmtest disk looprot loop-rot dev.bio-latency-threshold-us=100000 expect.bio=0
# vmtest disk part part dev.bio-latency-threshold-us=100000 expect.bio=1
# vmtest disk nullfast null dev.bio-latency-threshold-us=100000 expect.bio=1
# vmtest disk nullslow null latency-ns=2000000 expect.bio=0
# vmtest disk stuck null size=1M latency-ns=1000000000 expect.bio=0 \
#     expect.probe=gave-up
#
# The io_path parameter against the host's hint.
# vmtest guest probe-io-path-bio --driver ours --module-param io_path=bio
# vmtest disk ram ram dev.bio-latency-threshold-us=100000 expect.bio=1
# vmtest disk file file expect.bio=0
# vmtest run data_integrity
# vmtest guest probe-io-path-request --driver ours --module-param io_path=request
# vmtest disk ram ram dev.bio-latency-threshold-us=100000 expect.bio=1
# vmtest disk file file expect.bio=0
# vmtest run data_integrity
#
# The device's bio property forces the bit either way; a machine type
# older than the property's never offers it; the in-tree driver never
# negotiates it.
# vmtest guest probe-host-on-off --driver ours
# vmtest disk forced file dev.bio=on expect.bio=1
# vmtest disk never ram dev.bio=off expect.bio=0
# vmtest guest probe-old-machine --driver ours --machine pc-i440fx-10.0
# vmtest disk ram ram expect.bio=0
# vmtest guest probe-stock-driver --driver stock
# vmtest disk ram ram expect.bio=0
# vmtest disk file file expect.bio=0
# vmtest run data_integrity
#
# Migration under verified I/O to a host whose probe would say slow
# (threshold 0) and back, and the other way round: the features stay.
# vmtest guest migrate-fast-slow-fast --driver ours \
#     --env 'VBLK_MIGRATE_HOPS=ram.bio-latency-threshold-us=0|-'
# vmtest disk ram ram dev.bio-latency-threshold-us=100000 expect.bio=1
# vmtest disk file file expect.bio=0
# vmtest run migration.sh data_integrity
# vmtest guest migrate-slow-fast-slow --driver ours \
#     --env 'VBLK_MIGRATE_HOPS=ram.bio-latency-threshold-us=300|-'
# vmtest disk ram ram dev.bio-latency-threshold-us=0 expect.bio=0
# vmtest run migration.sh data_integrity
. ./test_common.sh

disks=$(vblk_expect_disks bio)
[ -n "$disks" ] || fail "no disk has an expect.bio key"
param=$(cat /sys/module/virtio_blk/parameters/io_path 2>/dev/null)

for name in $(vblk_expect_disks probe); do
	[ "$(vblk_expect "$name" probe)" = gave-up ] ||
		fail "$name: expect.probe=$(vblk_expect "$name" probe): want gave-up"
	args="{\"path\": \"/machine/peripheral/$name\", \"property\": \"bio-probe\"}"
	probe=$(vblk_host qmp "{\"execute\": \"qom-get\", \"arguments\": $args}") ||
		fail "$name: qom-get: $probe"
	ktap_log "$name: host probe $probe"
	case $probe in
	*'"reads": 0,'*'"reason": "a probe read outlasted the 20 ms budget"'*) ;;
	*) fail "$name: the host probe did not give up at its budget" ;;
	esac
done

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
