#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Devices whose virtio-blk configuration is absurd: the vhost-user test
# back end (selftests/host/vhost_user_blk.py, the "vhost" disk class of
# tools/vmrun) presents them as vmtests.conf describes, and the adaptive
# driver must clamp each value or refuse the device, with a clear line in
# the kernel log either way, and never crash (vmrun fails the run on any
# kernel splat; the back end fails it on any request that breaks the
# limits it advertised).
#
# The expectation for each disk is looked up by its name below.  For an
# accepted disk: the log lines, the resulting queue limits (and that they
# are sane whatever the case), the number of virtqueues in use, and data
# that round-trips on both I/O paths (direct multi-megabyte and buffered
# odd-sized I/O, discard and write-zeroes where offered).  For a refused
# disk (attached with absent=1): its log line, the failed probe, and no
# disk.  The hidden request-path disk must have the visible disk's limits.
# Disks attached with hotplug=1 (tiny rings, which hang the firmware at
# boot) are plugged here one at a time, which ties each to its device.
#
# Absurd device configurations (issue 3), each clamped or refused with a
# clear log line, never a crash; expectations by disk name above.
# QEMU sends its own num-queues (1..256 through
# vhost-user) whatever the back end says, so num_queues 0 cannot reach a
# guest.  Rings below 3 entries hang SeaBIOS: those disks are hot-plugged.
# vmtest guest absurd-segments-queues --driver ours --module-param io_path=bio
# vmtest disk sane vhost size=16M
# vmtest disk seg0 vhost size=16M cfg.seg_max=0
# vmtest disk seghuge vhost size=16M cfg.seg_max=4294967295 dev.queue-size=64
# vmtest disk size512 vhost size=16M cfg.size_max=512 vu.lenient=size_max
# vmtest disk tiny vhost size=16M cfg.seg_max=0 cfg.size_max=1 vu.lenient=size_max
# vmtest disk mq256 vhost size=16M dev.num-queues=256 cfg.num_queues=65535
# vmtest disk nomq4 vhost size=16M dev.num-queues=4
# vmtest disk qs4 vhost size=16M dev.queue-size=4 feat.indirect_desc=off hotplug=1
# vmtest disk qs1i vhost size=16M dev.queue-size=1 hotplug=1 absent=1
# vmtest disk qs2 vhost size=16M dev.queue-size=2 feat.indirect_desc=off hotplug=1 \
# 	absent=1
# vmtest disk qs2i vhost size=16M dev.queue-size=2 hotplug=1 absent=1
# vmtest run data_integrity
# vmtest guest absurd-blocks-topology --driver ours
# vmtest disk sane vhost size=16M
# vmtest disk pbe255 vhost size=16M cfg.physical_block_exp=255
# vmtest disk pbe16 vhost size=16M cfg.blk_size=4096 cfg.physical_block_exp=16
# vmtest disk topo vhost size=16M cfg.min_io_size=3 cfg.opt_io_size=7 \
# 	cfg.alignment_offset=3
# vmtest disk opthuge vhost size=16M cfg.opt_io_size=4294967295
# vmtest disk dseg0 vhost size=16M cfg.max_discard_seg=0 cfg.max_discard_sectors=0 \
# 	cfg.discard_sector_alignment=0 cfg.max_write_zeroes_sectors=0 \
# 	cfg.max_write_zeroes_seg=0
# vmtest disk dalign3 vhost size=16M cfg.discard_sector_alignment=3 cfg.max_discard_seg=1
# vmtest disk bs1000 vhost size=16M cfg.blk_size=1000 absent=1
# vmtest disk bs3 vhost size=16M cfg.blk_size=3 absent=1
# vmtest disk bs0 vhost size=16M cfg.blk_size=0 absent=1
# vmtest disk bs64k vhost size=16M cfg.blk_size=65536 absent=1
# vmtest run data_integrity
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || fail "the adaptive virtio_blk is not loaded"

# expect NAME: sets msgs (kernel log lines, one per line, without the
# "virtio_blk virtioN: " prefix), limits ("file=value ..." relative to the
# disk's queue/ directory), queues
# (virtqueues the driver must use, empty: do not check) and verdict.
expect() {
	msgs='' limits='' queues=1 verdict=accept
	case $1 in
	sane)	# the back end's defaults: seg_max 126, blk_size 512
		limits="max_segments=126 logical_block_size=512 physical_block_size=512" ;;
	seg0)	# cfg.seg_max=0
		msgs="device reports seg_max 0, using 1"
		limits="max_segments=1" ;;
	seghuge) # cfg.seg_max=4294967295 on a ring of 64 (dev.queue-size=64)
		msgs="seg_max 4294967295 exceeds what a ring of 64 can carry, using 62"
		limits="max_segments=62" ;;
	size512) # cfg.size_max=512: the block layer needs a page per segment
		msgs="segment size limit 512 below page size, using 4096"
		limits="max_segment_size=4096" ;;
	tiny)	# cfg.seg_max=0,cfg.size_max=1: one page per request
		msgs="device reports seg_max 0, using 1
segment size limit 1 below page size, using 4096"
		limits="max_segments=1 max_segment_size=4096" ;;
	pbe255)	# cfg.physical_block_exp=255
		msgs="ignoring physical_block_exp 255"
		limits="physical_block_size=512 minimum_io_size=512" ;;
	pbe16)	# cfg.blk_size=4096,cfg.physical_block_exp=16: the largest taken
		limits="logical_block_size=4096 physical_block_size=268435456 minimum_io_size=268435456" ;;
	topo)	# cfg.min_io_size=3,cfg.opt_io_size=7,cfg.alignment_offset=3:
		# odd multiples of the block are legitimate (RAID stripes)
		limits="minimum_io_size=1536 optimal_io_size=3584 ../alignment_offset=0" ;;
	opthuge) # cfg.opt_io_size=4294967295: more than 4 GiB in bytes
		msgs="ignoring opt_io_size 4294967295"
		limits="optimal_io_size=0" ;;
	dseg0)	# discard and write-zeroes with every limit 0
		# (0 sectors: no limit; 0 segments: as many as data segments)
		limits="max_discard_segments=126 discard_granularity=512 discard_max_hw_bytes=2199023255040 write_zeroes_max_bytes=2199023255040" ;;
	dalign3) # cfg.discard_sector_alignment=3
		limits="discard_granularity=1536" ;;
	mq256)	# dev.num-queues=256 (the most vhost-user can address),
		# cfg.num_queues=65535 (QEMU sends its own 256): one per CPU
		queues=$(nproc) ;;
	nomq4)	# dev.num-queues=4 without VIRTIO_BLK_F_MQ: one queue
		queues=1 ;;
	qs4)	# dev.queue-size=4,feat.indirect_desc=off: two data descriptors
		msgs="seg_max 126 exceeds what a ring of 4 can carry, using 2"
		limits="max_segments=2" ;;
	qs1i|qs2|qs2i) # dev.queue-size=1 or 2 (i: with indirect descriptors):
		# no room for header, data and status
		verdict=refuse
		qs=${1#qs}
		msgs="virtqueue of ${qs%i} entries cannot hold a request of 3 descriptors" ;;
	bs1000|bs3|bs0|bs64k) # cfg.blk_size=1000, 3, 0, 65536
		verdict=refuse
		bs=${1#bs}
		[ "$bs" = 64k ] && bs=65536
		msgs="unsupported block size $bs (must be a power of two from 512 to 4096)" ;;
	*)	return 1 ;;
	esac
}

# log_has VDEV MSG: the kernel logged MSG for the virtio device VDEV
# (VDEV may be a pattern).
log_has() {
	dmesg | grep -q "virtio_blk $1: $(printf '%s' "$2" | sed 's/[][\.*^$]/\\&/g')\$"
}

is_pow2() { [ "$1" -gt 0 ] && [ $(($1 & ($1 - 1))) = 0 ]; }

# check_limits SYS DEV: the case's limits, and limits sane for any device.
check_limits() {
	local q=$1/queue kv file want got lbs pbs
	for kv in $limits; do
		file=${kv%%=*}
		want=${kv#*=}
		got=$(cat "$q/$file")
		[ "$got" = "$want" ] || fail "$2: ${file#../} is $got, expected $want"
	done
	lbs=$(cat "$q/logical_block_size")
	pbs=$(cat "$q/physical_block_size")
	is_pow2 "$lbs" && [ "$lbs" -ge 512 ] && [ "$lbs" -le 4096 ] ||
		fail "$2: logical_block_size $lbs"
	is_pow2 "$pbs" && [ "$pbs" -ge "$lbs" ] || fail "$2: physical_block_size $pbs"
	[ "$(cat "$q/max_segments")" -ge 1 ] || fail "$2: no segments"
	[ "$(cat "$q/max_segment_size")" -ge 4096 ] || fail "$2: segments below a page"
	[ "$(cat "$q/max_hw_sectors_kb")" -ge 4 ] || fail "$2: max_hw_sectors_kb"
	[ "$(cat "$q/minimum_io_size")" -ge "$pbs" ] || fail "$2: minimum_io_size"
	[ $(($(cat "$q/optimal_io_size") % pbs)) = 0 ] || fail "$2: optimal_io_size"
	if [ "$(cat "$q/discard_max_hw_bytes")" != 0 ]; then
		[ "$(cat "$q/discard_granularity")" -ge "$lbs" ] ||
			fail "$2: discard_granularity below the block size"
		[ "$(cat "$q/max_discard_segments")" -ge 1 ] ||
			fail "$2: no discard segments"
	fi
}

# same_limits SYS DEV: the hidden request-path disk of a bio-capable disk
# has the same limits (a plain disk has none).
same_limits() {
	local d f n=0 want=0
	[ "$(vblk_paths "$1")" = request ] || want=1
	for d in "$1"/device/block/*; do
		[ "${d##*/}" = "${1##*/}" ] && continue
		n=$((n + 1))
		for f in logical_block_size physical_block_size max_segments \
			 max_segment_size max_hw_sectors_kb minimum_io_size \
			 optimal_io_size discard_granularity discard_max_hw_bytes \
			 max_discard_segments write_zeroes_max_bytes; do
			[ "$(cat "$d/queue/$f")" = "$(cat "$1/queue/$f")" ] ||
				fail "$2: hidden disk ${d##*/} $f $(cat "$d/queue/$f"), visible $(cat "$1/queue/$f")"
		done
	done
	[ "$n" = $want ] || fail "$2: $n hidden disks, want $want"
}

# roundtrip DEV LBS BASE: write fresh random data at BASE (bytes) with
# direct and with buffered I/O, read it back differently, compare.
roundtrip() {
	local dev=$1 lbs=$2 base=$3 odd
	head -c 4194304 /dev/urandom >/tmp/w || return 1
	dd if=/tmp/w of="$dev" bs=4M count=1 seek=$((base / 4194304)) oflag=direct \
		2>/dev/null || { ktap_log "direct write failed"; return 1; }
	dd if="$dev" of=/tmp/r bs=64k count=64 skip=$((base / 65536)) iflag=direct \
		2>/dev/null || { ktap_log "direct read failed"; return 1; }
	cmp -s /tmp/w /tmp/r || { ktap_log "direct data differs"; return 1; }
	# 3 blocks at a time from 4 MiB further on, buffered, then the page
	# cache dropped so that the read comes from the device.
	odd=$((3 * lbs))
	head -c $((odd * 67)) /dev/urandom >/tmp/w
	dd if=/tmp/w of="$dev" bs=$odd seek=$(((base + 4194304) / odd + 1)) conv=fsync \
		2>/dev/null || { ktap_log "buffered write failed"; return 1; }
	blockdev --flushbufs "$dev" || return 1
	dd if="$dev" of=/tmp/r bs=$odd skip=$(((base + 4194304) / odd + 1)) count=67 \
		2>/dev/null || { ktap_log "buffered read failed"; return 1; }
	cmp -s /tmp/w /tmp/r || { ktap_log "buffered data differs"; return 1; }
	rm -f /tmp/w /tmp/r
}

# zeroed DEV OFF LEN: the range reads back as zeroes (direct).
zeroed() {
	dd if="$1" of=/tmp/z bs=4096 skip=$(($2 / 4096)) count=$(($3 / 4096)) \
		iflag=direct 2>/dev/null || return 1
	[ "$(wc -c </tmp/z)" = "$3" ] && [ "$(tr -d '\0' </tmp/z | wc -c)" = 0 ]
}

# discards DEV BASE: discard and write-zeroes of 1 MiB each read back as
# zeroes (the back end zeroes discarded ranges).
discards() {
	local dev=$1 base=$2 q
	q=$(vblk_sys "$dev")/queue
	if [ "$(cat "$q/discard_max_hw_bytes")" != 0 ]; then
		head -c 1048576 /dev/urandom |
			dd of="$dev" bs=64k seek=$((base / 65536)) oflag=direct 2>/dev/null
		blkdiscard -o "$base" -l 1048576 "$dev" || { ktap_log "discard failed"; return 1; }
		zeroed "$dev" "$base" 1048576 || { ktap_log "discarded range not zero"; return 1; }
	fi
	if [ "$(cat "$q/write_zeroes_max_bytes")" != 0 ]; then
		head -c 1048576 /dev/urandom |
			dd of="$dev" bs=64k seek=$((base / 65536)) oflag=direct 2>/dev/null
		# util-linux's, by path: busybox's has no -z
		/sbin/blkdiscard -z -o "$base" -l 1048576 "$dev" ||
			{ ktap_log "write zeroes failed"; return 1; }
		zeroed "$dev" "$base" 1048576 || { ktap_log "zeroed range not zero"; return 1; }
	fi
}

# plugged_done NAME: the virtio device that appeared since $before is in
# $new, and the driver has taken it as disk NAME or given up on it.
plugged_done() {
	local v
	for v in /sys/bus/virtio/devices/virtio*; do
		echo "$before" | grep -qx "${v##*/}" || new=${v##*/}
	done
	[ -n "$new" ] || return 1
	vblk_dev "$1" >/dev/null ||
		dmesg | grep -q "virtio_blk $new: probe with driver virtio_blk failed"
}

# plug NAME: attach a hotplug=1 disk, wait (30 s at most) until the driver
# took it or gave up, and print the virtio device it became.
plug() {
	local before new=''
	before=$(ls /sys/bus/virtio/devices)
	vblk_host plug "$1" >/dev/null || return 1
	vblk_until 30 plugged_done "$1"
	[ -n "$new" ] && echo "$new"
}

# in_list WORD LIST
in_list() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

plugged=''
for name in $VBLK_HOTPLUG_DISKS; do
	vdev=$(plug "$name") || fail "$name: hotplug did not give a virtio device"
	plugged="$plugged $name:$vdev"
done
accepted=$VBLK_DISKS
for name in $VBLK_HOTPLUG_DISKS; do
	in_list "$name" "$VBLK_ABSENT_DISKS" || accepted="$accepted $name"
done

# -- accepted devices -------------------------------------------------------
n=0
for name in $accepted; do
	expect "$name" || fail "no expectation for disk $name"
	[ "$verdict" = accept ] || fail "$name should be refused: attach it with absent=1"
	dev=$(vblk_dev "$name") || fail "$name: no disk"
	sys=$(vblk_sys "$dev")
	vdev=$(basename "$(readlink -f "$sys/device")")
	printf '%s\n' "$msgs" | while IFS= read -r m; do
		[ -z "$m" ] || log_has "$vdev" "$m" || fail "$name ($vdev): no log line '$m'"
	done || exit $KSFT_FAIL
	check_limits "$sys" "$name"
	same_limits "$sys" "$name"
	if [ -n "$queues" ]; then
		got=$(grep -c " $vdev-req\.[0-9]*\$" /proc/interrupts)
		[ "$got" = "$queues" ] || fail "$name: $got virtqueues in use, expected $queues"
	fi
	lbs=$(cat "$sys/queue/logical_block_size")
	base=0
	paths=$(vblk_paths "$sys")
	for p in $paths; do
		vblk_set_path "$sys" "$p" || fail "$name: cannot switch to $p"
		roundtrip "$dev" "$lbs" "$base" || fail "$name: $p: data did not round-trip"
		discards "$dev" "$base" || fail "$name: $p: discard or write zeroes"
		base=$((base + 8388608))
	done
	vblk_set_path "$sys" auto >/dev/null 2>&1
	ktap_log "$name: $dev accepted${msgs:+, logged}; limits: segs $(cat "$sys/queue/max_segments")" \
		"x $(cat "$sys/queue/max_segment_size") B, lbs $lbs," \
		"pbs $(cat "$sys/queue/physical_block_size"), queues ${queues:-?}; I/O ok on $paths"
	n=$((n + 1))
done

# -- refused devices --------------------------------------------------------
unbound=0
for v in /sys/bus/virtio/devices/virtio*; do
	[ "$(cat "$v/device")" = 0x0002 ] || continue
	[ -e "$v/driver" ] || unbound=$((unbound + 1))
done
refused=0
for name in $VBLK_ABSENT_DISKS; do
	expect "$name" || fail "no expectation for disk $name"
	[ "$verdict" = refuse ] || fail "$name should be accepted: do not attach it with absent=1"
	vblk_dev "$name" >/dev/null && fail "$name: refused device has a disk"
	vdev=''
	for p in $plugged; do
		[ "${p%%:*}" = "$name" ] && vdev=${p#*:}
	done
	if [ -z "$vdev" ]; then		# attached at boot: find it by its message
		vdev=$(dmesg | grep -o "virtio_blk virtio[0-9]*: $msgs" | head -n1 | cut -d' ' -f2)
		vdev=${vdev%:}
	fi
	log_has "${vdev:-none}" "$msgs" || fail "$name: no log line '$msgs'"
	[ ! -e "/sys/bus/virtio/devices/$vdev/driver" ] || fail "$name: $vdev has a driver"
	dmesg | grep -q "virtio_blk $vdev: probe with driver virtio_blk failed with error -22" ||
		fail "$name: no failed probe of $vdev"
	ktap_log "$name: $vdev refused: $msgs"
	refused=$((refused + 1))
done
[ "$unbound" = "$refused" ] ||
	fail "$unbound virtio block devices without a driver, $refused expected"
[ $((n + refused)) -gt 0 ] || fail "no disks to test"
exit $KSFT_PASS
