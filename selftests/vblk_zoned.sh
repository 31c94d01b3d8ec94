#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A host-managed zoned device (VIRTIO_BLK_F_ZONED, from the vhost-user
# test back end) is a zoned disk with the device's limits, as the in-tree
# driver makes it: zone report, open/close/finish/reset, writes only at a
# zone's write pointer, reads of what was written, the open and active
# zone limits, and fio's zoned mode with verification.  Under our driver
# it is a plain disk on the request path that refuses the bio path.
#
# The disk with role=limits is tested against what its back end was told
# (cfg.*), which its expect.zone-sectors, expect.max-open,
# expect.max-active and expect.max-append (sectors) keys repeat.
#
# Zone append: no user-space interface issues it on a block device (fio
# 3.33 has no zone append, io_uring no such operation in 6.12), but btrfs
# on a zoned disk writes its data with zone appends.  The disk with
# role=append is a second zoned disk (zones of at least 4 MiB, btrfs's minimum, no
# zone limits) for a btrfs written, remounted and read back; the back
# end's summary line on the host counts the zone appends it served.
#
# Host-managed zoned devices from the vhost-user back end (x-zoned test
# patch): limits, blkzone, writes at the write pointer, open/active
# limits, fio zbd, zone appends from btrfs; ours keeps them plain even
# with io_path=bio.
# vmtest guest stock-zoned --driver stock
# vmtest disk zoned1 vhost size=64M dev.x-zoned=on cfg.zone_sectors=2048 \
# 	cfg.max_open_zones=4 cfg.max_active_zones=6 cfg.max_append_sectors=256 \
# 	cfg.write_granularity=4096 feat.discard=on role=limits \
# 	expect.zone-sectors=2048 expect.max-open=4 expect.max-active=6 \
# 	expect.max-append=256
# vmtest disk zappend vhost size=256M dev.x-zoned=on cfg.zone_sectors=8192 role=append
# vmtest guest ours-zoned --driver ours --module-param io_path=bio
# vmtest disk zoned1 vhost size=64M dev.x-zoned=on cfg.zone_sectors=2048 \
# 	cfg.max_open_zones=4 cfg.max_active_zones=6 cfg.max_append_sectors=256 \
# 	cfg.write_granularity=4096 feat.discard=on role=limits \
# 	expect.zone-sectors=2048 expect.max-open=4 expect.max-active=6 \
# 	expect.max-append=256
# vmtest disk zappend vhost size=256M dev.x-zoned=on cfg.zone_sectors=8192 role=append
. ./test_common.sh
. ./vblk_lib.sh

name=$(vblk_role_disks limits | head -n 1)
[ -n "$name" ] || fail "no disk with role=limits"
zsect=$(vblk_expect "$name" zone-sectors) &&
	max_open=$(vblk_expect "$name" max-open) &&
	max_active=$(vblk_expect "$name" max-active) &&
	max_append=$(vblk_expect "$name" max-append) ||
	fail "$name: want expect.zone-sectors, max-open, max-active and max-append"
command -v blkzone >/dev/null || fail "blkzone (util-linux) is not in the guest"
command -v fio >/dev/null || fail "fio is not in the guest"

dev=$(vblk_dev "$name") || fail "no disk with serial $name"
sys=$(vblk_sys "$dev")
q=$sys/queue

# -- what the block layer was told -------------------------------------------
expect_attr() {		# FILE VALUE
	[ "$(cat "$q/$1")" = "$2" ] || fail "$dev: queue/$1 is $(cat "$q/$1"), want $2"
}
expect_attr zoned host-managed
expect_attr chunk_sectors "$zsect"
size=$(cat "$sys/size")
nr=$(( (size + zsect - 1) / zsect ))
expect_attr nr_zones "$nr"
expect_attr max_open_zones "$max_open"
expect_attr max_active_zones "$max_active"
expect_attr zone_append_max_bytes $((max_append * 512))
expect_attr discard_max_bytes 0
ktap_log "$dev: host-managed, $nr zones of $zsect sectors, open $max_open, active $max_active"

# -- zone report -------------------------------------------------------------
# zone_field ZONE FIELD: "wptr" (sectors from the disk start) or "zcond"
# (number) of zone ZONE, from a fresh report.
zone_field() {
	local line
	line=$(blkzone report -o $(($1 * zsect)) -c 1 "$dev") ||
		fail "blkzone report of zone $1 failed"
	case $2 in
	wptr) line=${line#*wptr 0x}; echo $((0x${line%% *})) ;;
	zcond) line=${line#*zcond:}; line=${line# }; echo "${line%%(*}" ;;
	esac
}
# expect_zone ZONE COND WP: the zone's condition number and write pointer
# (relative to the zone start).
expect_zone() {
	local c w
	c=$(zone_field "$1" zcond)
	w=$(zone_field "$1" wptr)
	[ "$c" = "$2" ] && [ "$w" = "$3" ] ||
		fail "zone $1: zcond $c wptr $w, want zcond $2 wptr $3 ($4)"
}
COND_EMPTY=1 COND_IOPEN=2 COND_EOPEN=3 COND_CLOSED=4 COND_FULL=14

blkzone reset "$dev" || fail "blkzone reset (all zones) failed"
n=$(blkzone report "$dev" | grep -c "zcond: *$COND_EMPTY(")
[ "$n" = "$nr" ] || fail "report: $n empty zones, want $nr"
ktap_log "report: $nr zones, all empty after reset-all"

# -- writes at the write pointer, reads of what was written --------------------
zbytes=$((zsect * 512))
dd if=/dev/urandom of=/tmp/zpat bs=4k count=8 2>/dev/null || fail "no pattern"
dd if=/tmp/zpat of="$dev" bs=4k count=4 oflag=direct 2>/dev/null ||
	fail "write at the write pointer of zone 0 failed"
dd if=/tmp/zpat of="$dev" bs=4k skip=4 seek=4 count=4 oflag=direct 2>/dev/null ||
	fail "second write at the write pointer of zone 0 failed"
expect_zone 0 $COND_IOPEN 64 "after 32 KiB written"
dd if="$dev" of=/tmp/zback bs=4k count=8 iflag=direct 2>/dev/null || fail "read failed"
cmp -s /tmp/zpat /tmp/zback || fail "zone 0 reads back other data"
dd if=/tmp/zpat of="$dev" bs=4k seek=16 count=1 oflag=direct 2>/dev/null &&
	fail "a write ahead of the write pointer succeeded"
dd if=/tmp/zpat of="$dev" bs=4k seek=0 count=1 oflag=direct 2>/dev/null &&
	fail "a write behind the write pointer succeeded"
expect_zone 0 $COND_IOPEN 64 "after the refused writes"
ktap_log "writes at the write pointer land and read back; others are refused"

# -- open, close, finish, reset ------------------------------------------------
z1=$zsect
blkzone open -o $z1 -c 1 "$dev" || fail "blkzone open failed"
expect_zone 1 $COND_EOPEN 0 "explicitly opened"
blkzone close -o $z1 -c 1 "$dev" || fail "blkzone close failed"
expect_zone 1 $COND_EMPTY 0 "closed with nothing written"
blkzone close -o 0 -c 1 "$dev" || fail "blkzone close of zone 0 failed"
expect_zone 0 $COND_CLOSED 64 "closed after writes"
blkzone finish -o 0 -c 1 "$dev" || fail "blkzone finish failed"
expect_zone 0 $COND_FULL "$zsect" "finished"
dd if=/tmp/zpat of="$dev" bs=4k seek=$((zbytes / 4096 - 1)) count=1 oflag=direct 2>/dev/null &&
	fail "a write to a full zone succeeded"
blkzone reset -o 0 -c 1 "$dev" || fail "blkzone reset of zone 0 failed"
expect_zone 0 $COND_EMPTY 0 "reset"
dd if="$dev" of=/tmp/zback bs=4k count=8 iflag=direct 2>/dev/null || fail "read failed"
dd if=/dev/zero of=/tmp/zzero bs=4k count=8 2>/dev/null
cmp -s /tmp/zzero /tmp/zback || fail "a reset zone does not read back zeroes"
ktap_log "open, close, finish and reset move zones as expected"

# -- open and active zone limits -------------------------------------------------
# Each write to an empty zone opens it; the device closes implicitly open
# zones to stay within max_open, and refuses a zone beyond max_active.
i=0
while [ $i -lt "$max_active" ]; do
	dd if=/tmp/zpat of="$dev" bs=4k seek=$((i * zbytes / 4096)) count=1 oflag=direct 2>/dev/null ||
		fail "write to zone $i of $max_active active failed"
	i=$((i + 1))
done
dd if=/tmp/zpat of="$dev" bs=4k seek=$((i * zbytes / 4096)) count=1 oflag=direct 2>/tmp/zerr &&
	fail "a write opening zone $i beyond max_active_zones $max_active succeeded"
ktap_log "zone $i beyond max_active: $(head -n1 /tmp/zerr)"
blkzone finish -o 0 -c 1 "$dev" || fail "blkzone finish of zone 0 failed"
# After a failed write the block layer holds the zone's writes until a
# zone report brings its write pointer up to date.
expect_zone $i $COND_EMPTY 0 "after the refused write"
dd if=/tmp/zpat of="$dev" bs=4k seek=$((i * zbytes / 4096)) count=1 oflag=direct 2>/dev/null ||
	fail "zone $i still refused after zone 0 was finished"
ktap_log "open zones stay within $max_open, active zones within $max_active"

# -- fio's zoned mode, verified ------------------------------------------------------
blkzone reset "$dev" || fail "blkzone reset (all zones) failed"
fio --name=zbd --filename="$dev" --zonemode=zbd --direct=1 --ioengine=libaio \
    --iodepth=8 --rw=write --bs=16k --size=$((4 * zbytes)) \
    --max_open_zones="$max_open" --verify=crc32c --do_verify=1 \
    --output=/tmp/zfio >/dev/null 2>&1 || {
	cat /tmp/zfio
	fail "fio --zonemode=zbd write with verification failed"
}
expect_zone 0 $COND_FULL "$zsect" "after fio filled it"
ktap_log "fio --zonemode=zbd: $((4 * zbytes / 1048576)) MiB written sequentially and verified"

# -- zone append, issued by btrfs ------------------------------------------------
aname=$(vblk_role_disks append | head -n 1)
[ -n "$aname" ] || fail "no disk with role=append"
adev=$(vblk_dev "$aname") || fail "no disk with serial $aname"
[ "$(cat "$(vblk_sys "$adev")/queue/zoned")" = host-managed ] || fail "$adev is not zoned"
command -v mkfs.btrfs >/dev/null || fail "mkfs.btrfs is not in the guest"
modprobe btrfs 2>/dev/null || grep -qw btrfs /proc/filesystems || fail "no btrfs module"
mkfs.btrfs -f -m single -d single "$adev" >/tmp/zmkfs 2>&1 || {
	cat /tmp/zmkfs
	fail "mkfs.btrfs on the zoned $adev failed"
}
grep -qi zoned /tmp/zmkfs || ktap_log "mkfs.btrfs did not mention zoned mode"
mkdir -p /mnt/zbtrfs
dd if=/dev/urandom of=/tmp/zfile bs=1M count=8 2>/dev/null || fail "no file data"
mount -t btrfs "$adev" /mnt/zbtrfs || fail "mount of the zoned btrfs failed"
cp /tmp/zfile /mnt/zbtrfs/f && sync || fail "write to the zoned btrfs failed"
umount /mnt/zbtrfs || fail "umount failed"
mount -t btrfs "$adev" /mnt/zbtrfs || fail "second mount failed"
cmp -s /tmp/zfile /mnt/zbtrfs/f || fail "the file reads back other data"
umount /mnt/zbtrfs || fail "umount failed"
ktap_log "btrfs on zoned $adev: 8 MiB written by zone appends, read back after remount"

# -- the path ------------------------------------------------------------------
if vblk_ours; then
	[ "$(cat "$sys/io_path")" = request ] || fail "io_path is $(cat "$sys/io_path")"
	[ "$(cat "$sys/io_path_reason")" = "host-managed zoned device" ] ||
		fail "io_path_reason is $(cat "$sys/io_path_reason")"
	vblk_hidden "$sys" >/dev/null && fail "a zoned disk has a hidden disk"
	echo bio >"$sys/io_path" 2>/tmp/zerr && fail "io_path accepted bio"
	grep -q "not supported" /tmp/zerr || fail "io_path=bio: $(cat /tmp/zerr), want EOPNOTSUPP"
	[ "$(cat "$sys/io_path")" = request ] || fail "io_path is $(cat "$sys/io_path") after bio"
	for p in auto request; do
		echo $p >"$sys/io_path" || fail "io_path refused $p"
	done
	[ "$(cat "$sys/io_path")" = request ] || fail "io_path is $(cat "$sys/io_path")"
	dmesg | grep -q "\[${dev#/dev/}\] request path: host-managed zoned device," ||
		fail "no probe line saying the path was chosen for the zones"
	ktap_log "ours: plain disk on the request path, io_path=bio refused: $(cat /tmp/zerr)"
fi
exit $KSFT_PASS
