#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# I/O accounting on the visible disk, on both paths: after a known number
# of direct reads, writes and discards, /sys/block/vdX/stat has counted
# each of them exactly once (neither lost nor counted twice by the two
# disks of the device), with the right sizes, nothing is left in flight,
# and the disk was seen busy.
#
# vmtest guest ours-discard --driver ours
# vmtest disk d1 ram size=64M dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
# vmtest disk disc file size=64M blk.discard=unmap dev.bio=off role=discard \
#     expect.discard=zeroes
. ./test_common.sh
. ./vblk_lib.sh

N=256			# operations of each kind per path

dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")
# The discard disk: the one with role=discard, else the first writable
# disk that offers discard; a guest without one fails.
ddev=
for d in $(vblk_role_disks discard) $VBLK_DISKS; do
	d=$(vblk_dev "$d") || continue
	s=$(vblk_sys "$d")
	[ "$(cat "$s/queue/discard_max_bytes")" != 0 ] &&
		[ "$(cat "$s/ro")" = 0 ] && ddev=$d && break
done
[ -n "$ddev" ] || fail "no writable disk offers discard"

# field N SYS: one field of SYS/stat (Documentation/block/stat.rst).
field() {
	set -- "$1" $(cat "$2/stat")
	eval echo "\${$(($1 + 1))}"
}

# stat_idle SYS: stat (field 9) and inflight count nothing in flight.
stat_idle() {
	[ "$(field 9 "$1")" = 0 ] && vblk_idle "$1/inflight"
}

# delta WANT_MIN WANT_MAX BEFORE AFTER WHAT
delta() {
	local d=$(($4 - $3))
	[ "$d" -ge "$1" ] && [ "$d" -le "$2" ] ||
		fail "$p: $5 went up by $d, want $1..$2"
}

paths=current
vblk_ours && paths=$(vblk_paths "$sys")
for p in $paths; do
	[ "$p" = current ] || vblk_set_path "$sys" "$p" || fail "cannot switch to $p"
	vblk_settle

	r0=$(field 1 "$sys"); rs0=$(field 3 "$sys"); t0=$(field 10 "$sys")
	dd if="$dev" of=/dev/null bs=4k count=$N iflag=direct 2>/dev/null ||
		fail "$p: read failed"
	r1=$(field 1 "$sys"); rs1=$(field 3 "$sys"); t1=$(field 10 "$sys")
	# A little slack above for anything else reading meanwhile.
	delta $N $((N + 8)) "$r0" "$r1" "reads completed"
	delta $((N * 8)) $((N * 8 + 64)) "$rs0" "$rs1" "sectors read"
	[ "$t1" -gt "$t0" ] || fail "$p: io_ticks did not move ($t0)"

	w0=$(field 5 "$sys"); ws0=$(field 7 "$sys")
	dd if=/dev/zero of="$dev" bs=8k count=$N oflag=direct 2>/dev/null ||
		fail "$p: write failed"
	w1=$(field 5 "$sys"); ws1=$(field 7 "$sys")
	delta $N $N "$w0" "$w1" "writes completed"
	delta $((N * 16)) $((N * 16)) "$ws0" "$ws1" "sectors written"

	# Closing the disk after writing makes udev probe it (its inotify
	# watch): once that is done, nothing may be left in flight.
	vblk_settle
	vblk_until 10 stat_idle "$sys" || fail "$p: in flight for 10 s: stat field 9" \
		"$(field 9 "$sys"), inflight '$(echo $(cat "$sys/inflight"))'"
	ktap_log "$p: $dev counted $((r1 - r0)) reads ($((rs1 - rs0)) sectors), $((w1 - w0)) writes ($((ws1 - ws0)) sectors)"

	dsys=$(vblk_sys "$ddev")
	# A plain discard disk stays on the request path.
	case " current $(vblk_paths "$dsys") " in
	*" $p "*) [ "$p" = current ] || vblk_set_path "$dsys" "$p" ||
			fail "cannot switch $ddev to $p" ;;
	esac
	vblk_settle
	d0=$(field 12 "$dsys"); ds0=$(field 14 "$dsys")
	i=0
	while [ $i -lt 16 ]; do
		blkdiscard -o $((i * 1048576)) -l 65536 "$ddev" ||
			fail "$p: discard failed"
		i=$((i + 1))
	done
	d1=$(field 12 "$dsys"); ds1=$(field 14 "$dsys")
	delta 16 16 "$d0" "$d1" "discards completed"
	delta 2048 2048 "$ds0" "$ds1" "sectors discarded"
	ktap_log "$p: $ddev counted $((d1 - d0)) discards ($((ds1 - ds0)) sectors)"
done
exit $KSFT_PASS
