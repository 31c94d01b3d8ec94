#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A disk's shape follows the path it starts on.  One on the request path at
# probe is a plain blk-mq disk, as under the in-tree driver: no hidden
# disk, and the blk-mq queue attributes on vdX itself.  Its io_path takes
# "request", and "auto" when the medium asks for it, at once; "bio" re-creates
# it bio-capable when nothing holds it open (same name and numbers, data
# intact), and while it is open fails with EBUSY and one warning, changing
# nothing.  A disk that starts on the bio path is bio-capable from probe,
# and one whose medium asks for the bio path but the io_path=request
# parameter kept plain is re-created by "auto".
#
# Needs a writable disk whose medium auto gives the request path (role=
# plain: rotating) and one it gives the bio path (role=capable: non-rotating,
# 45 us), fixed by QEMU's test-only x-test-* properties (see vblk_medium.sh).
#
# vmtest guest ours-shape --driver ours
# vmtest disk plain ram size=16M dev.bio=on dev.x-test-rotation-rate=7200 \
#   dev.x-test-read-latency-hint=0 role=plain
# vmtest disk hinted ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 role=capable
# vmtest run data_integrity
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || fail "needs the adaptive driver"
drv=/sys/bus/virtio/drivers/virtio_blk
warning="in use: the bio path needs the disk re-created"

plain=$(vblk_dev "$(vblk_role_disks plain)") || fail "no disk with role=plain"
plain=$(vblk_sys "$plain")
capable=$(vblk_dev "$(vblk_role_disks capable)") || fail "no disk with role=capable"
capable=$(vblk_sys "$capable")
rotating="rotation_rate 7200 rpm (rotating)"
fast="read_latency_hint 45 us <= $(cat /sys/module/virtio_blk/parameters/bio_latency_us) us"

# is_plain SYS / is_capable SYS: the shape, from both sides.
is_plain() {
	! vblk_hidden "$1" >/dev/null &&
		for a in scheduler nr_requests wbt_lat_usec rq_affinity; do
			[ -e "$1/queue/$a" ] || return 1
		done
}
is_capable() {
	vblk_hidden "$1" >/dev/null && [ ! -e "$1/queue/scheduler" ]
}

# state SYS: path and reason, to compare before and after.
state() {
	echo "$(cat "$1/io_path")/$(cat "$1/io_path_reason")"
}

# warnings: how often the driver has said a busy disk cannot be re-created.
warnings() {
	dmesg | grep -c "$warning"
}

# -- a disk on a rotating medium starts plain --------------------------------
dev=/dev/${plain##*/}
is_plain "$plain" || fail "$dev: not a plain blk-mq disk at probe"
[ "$(cat "$plain/io_path")" = request ] || fail "$dev: probe state $(state "$plain")"
ktap_log "$dev: plain blk-mq disk at probe ($(cat "$plain/queue/scheduler"))"

echo request >"$plain/io_path" || fail "$dev: writing request failed"
[ "$(state "$plain")" = "request/io_path written by user" ] ||
	fail "$dev: request gave $(state "$plain")"
echo auto >"$plain/io_path" || fail "$dev: writing auto failed"
[ "$(state "$plain")" = "request/$rotating" ] || fail "$dev: auto gave $(state "$plain")"
is_plain "$plain" || fail "$dev: request or auto changed the shape"

# -- open, "bio" is refused and changes nothing -----------------------------
before=$(state "$plain")
w0=$(warnings)
exec 3<"$dev" || fail "cannot open $dev"
err=$(echo bio 2>&1 >"$plain/io_path") && { exec 3<&-; fail "$dev: bio accepted while open"; }
exec 3<&-
case $err in
*"busy"*) ;;
*) fail "$dev: bio while open: expected EBUSY, got: $err" ;;
esac
[ "$(state "$plain")" = "$before" ] || fail "$dev: refused bio changed $before to $(state "$plain")"
is_plain "$plain" || fail "$dev: refused bio changed the shape"
[ "$(warnings)" = $((w0 + 1)) ] || fail "$dev: want one '$warning' line, have $(($(warnings) - w0))"
ktap_log "$dev: bio refused with EBUSY while open, one warning, nothing changed"

# -- closed, "bio" re-creates it bio-capable --------------------------------
numbers=$(cat "$plain/dev")
dd if=/dev/urandom of=/tmp/vblk_shape.pat bs=64k count=16 2>/dev/null
dd if=/tmp/vblk_shape.pat of="$dev" bs=64k oflag=direct 2>/dev/null ||
	fail "$dev: writing the pattern failed"
vblk_settle
echo bio >"$plain/io_path" || fail "$dev: bio refused while closed"
[ "$(cat "$plain/dev")" = "$numbers" ] || fail "$dev: numbers $numbers became $(cat "$plain/dev")"
is_capable "$plain" || fail "$dev: not bio-capable after bio"
[ "$(state "$plain")" = "bio/io_path written by user" ] ||
	fail "$dev: re-created with $(state "$plain")"
vblk_settle
head -c 1048576 "$dev" | cmp -s - /tmp/vblk_shape.pat || fail "$dev: data changed across the re-creation"
for p in request bio request; do
	vblk_set_path "$plain" $p || fail "$dev: cannot switch to $p once bio-capable"
	dd if="$dev" of=/dev/null bs=4k count=64 iflag=direct 2>/dev/null ||
		fail "$dev: reading on $p failed"
done
ktap_log "$dev: re-created bio-capable as $numbers, data intact, switches live"

# -- a disk on a fast medium starts bio-capable ------------------------------
dev=/dev/${capable##*/}
is_capable "$capable" || fail "$dev: not bio-capable at probe"
[ "$(state "$capable")" = "bio/$fast" ] || fail "$dev: probe state $(state "$capable")"

# ... unless io_path=request keeps it plain; then "auto" re-creates it.
vdev=$(basename "$(readlink -f "$capable/device")")
mp=/sys/module/virtio_blk/parameters/io_path
echo request >$mp || fail "cannot set the io_path parameter"
echo "$vdev" >$drv/unbind || fail "cannot unbind $vdev"
echo "$vdev" >$drv/bind || fail "cannot bind $vdev"
echo auto >$mp
vblk_settle
is_plain "$capable" || fail "$dev: io_path=request did not make it plain"
[ "$(state "$capable")" = "request/io_path module parameter" ] ||
	fail "$dev: io_path=request gave $(state "$capable")"
echo auto >"$capable/io_path" || fail "$dev: auto refused"
is_capable "$capable" || fail "$dev: auto on a fast medium did not re-create it"
[ "$(state "$capable")" = "bio/$fast" ] || fail "$dev: auto gave $(state "$capable")"
ktap_log "$dev: bio-capable at probe; plain under io_path=request, re-created by auto"
vblk_settle
exit $KSFT_PASS
