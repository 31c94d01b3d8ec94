#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The medium a device reports at probe (VIRTIO_BLK_F_BIO: rotation_rate
# and read_latency_hint in configuration space) decides the path auto
# takes, the words of io_path_reason and the rotational flag:
#   rotation_rate 1 and read_latency_hint at or under bio_latency_us, or
#     not reported (0)                        bio path, non-rotational
#   rotation_rate 1, hint over the threshold  request path, non-rotational
#   rotation_rate 0x0401-0xfffe (rpm)         request path, rotational
#   rotation_rate 0 or reserved               request path, rotational
#   no VIRTIO_BLK_F_BIO                       request path, rotational (as
#                                             the in-tree driver)
# A bio-capable disk's hidden disk has the same rotational flag.  Each
# disk takes verified I/O on the path it starts on.  On a bio-capable
# disk, "request" written to io_path is the user's choice (its reason
# says so) and "auto" returns to the medium's choice and reason.  With
# io_path=request as module parameter every disk is on the request path
# whatever the medium says, and the rotational flag still follows it.
#
# The fields come from QEMU's virtio-blk (bio=on offers the bit), fixed by
# its test-only x-test-rotation-rate and x-test-read-latency-hint
# properties whatever the host detects or measures.  Each disk says what
# to find: expect.path, expect.rotational, and expect.why, the
# field that decides:
#   hint-le, hint-gt    read_latency_hint (expect.hint) <= or > threshold
#   hint-none           read_latency_hint not reported
#   rpm                 rotation_rate (expect.rpm) rotating
#   rot-none            rotation_rate not reported
#   rot-reserved        rotation_rate reserved (expect.rpm, hex)
#   nobit               no VIRTIO_BLK_F_BIO
#   param               the io_path module parameter
#
# vmtest guest ours-medium --driver ours
# vmtest disk fast ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 expect.path=bio expect.rotational=0 \
#   expect.why=hint-le expect.hint=45
# vmtest disk measuring ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=0 expect.path=bio expect.rotational=0 expect.why=hint-none
# vmtest disk remote ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=5000 expect.path=request expect.rotational=0 \
#   expect.why=hint-gt expect.hint=5000
# vmtest disk hdd ram size=16M dev.bio=on dev.x-test-rotation-rate=7200 \
#   dev.x-test-read-latency-hint=45 expect.path=request expect.rotational=1 \
#   expect.why=rpm expect.rpm=7200
# vmtest disk unknown ram size=16M dev.bio=on dev.x-test-rotation-rate=0 \
#   dev.x-test-read-latency-hint=45 expect.path=request expect.rotational=1 \
#   expect.why=rot-none
# vmtest disk reserved ram size=16M dev.bio=on dev.x-test-rotation-rate=512 \
#   dev.x-test-read-latency-hint=0 expect.path=request expect.rotational=1 expect.why=rot-reserved \
#   expect.rpm=0x0200
# vmtest disk plain ram size=16M dev.bio=off expect.path=request expect.rotational=1 \
#   expect.why=nobit
# vmtest guest ours-medium-threshold --driver ours \
#   --module-param bio_latency_us=30
# vmtest disk under ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=20 expect.path=bio expect.rotational=0 \
#   expect.why=hint-le expect.hint=20
# vmtest disk at ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=30 expect.path=bio expect.rotational=0 \
#   expect.why=hint-le expect.hint=30
# vmtest disk over ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 expect.path=request expect.rotational=0 \
#   expect.why=hint-gt expect.hint=45
# vmtest guest ours-medium-request --driver ours --module-param io_path=request
# vmtest disk fast ram size=16M dev.bio=on dev.x-test-rotation-rate=1 \
#   dev.x-test-read-latency-hint=45 expect.path=request expect.rotational=0 \
#   expect.why=param
# vmtest disk hdd ram size=16M dev.bio=on dev.x-test-rotation-rate=7200 \
#   dev.x-test-read-latency-hint=0 expect.path=request expect.rotational=1 \
#   expect.why=param
. ./test_common.sh
. ./vblk_lib.sh

vblk_require ours fio
limit=$(cat /sys/module/virtio_blk/parameters/bio_latency_us)

# reason NAME: the io_path_reason the disk NAME must show.
reason() {
	local hint rpm
	hint=$(vblk_expect "$1" hint)
	rpm=$(vblk_expect "$1" rpm)
	case $(vblk_expect "$1" why) in
	hint-le) echo "read_latency_hint $hint us <= $limit us" ;;
	hint-gt) echo "read_latency_hint $hint us > $limit us" ;;
	hint-none) echo "read_latency_hint not reported yet" ;;
	rpm) echo "rotation_rate $rpm rpm (rotating)" ;;
	rot-none) echo "rotation_rate not reported" ;;
	rot-reserved) echo "rotation_rate $rpm reserved (not reported)" ;;
	nobit) echo "device does not offer VIRTIO_BLK_F_BIO" ;;
	param) echo "io_path module parameter" ;;
	*) fail "$1: no expect.why" ;;
	esac
}

# check NAME SYS: path, reason and rotational flag(s) as expected.
check() {
	local want h
	want=$(vblk_expect "$1" path) || fail "$1: no expect.path"
	[ "$(cat "$2/io_path")" = "$want" ] ||
		fail "$1: io_path $(cat "$2/io_path"), want $want ($(cat "$2/io_path_reason"))"
	want=$(reason "$1")
	[ "$(cat "$2/io_path_reason")" = "$want" ] ||
		fail "$1: io_path_reason '$(cat "$2/io_path_reason")', want '$want'"
	want=$(vblk_expect "$1" rotational) || fail "$1: no expect.rotational"
	[ "$(cat "$2/queue/rotational")" = "$want" ] ||
		fail "$1: queue/rotational $(cat "$2/queue/rotational"), want $want"
	if h=$(vblk_hidden "$2"); then
		[ "$(cat "/sys/block/$h/queue/rotational")" = "$want" ] ||
			fail "$1: hidden $h queue/rotational $(cat "/sys/block/$h/queue/rotational"), want $want"
	fi
}

n=0
for name in $(vblk_expect_disks path); do
	dev=$(vblk_dev "$name") || fail "$name: no disk"
	sys=$(vblk_sys "$dev")
	check "$name" "$sys"
	vblk_fio_verified 60 "medium-$name" "$dev" --size=4M
	ktap_log "$name: $(cat "$sys/io_path") path ($(cat "$sys/io_path_reason")), rotational $(cat "$sys/queue/rotational"), verified I/O"

	# The user's choice, then back to the medium's.
	if [ "$(cat "$sys/io_path")" = bio ]; then
		vblk_set_path "$sys" request || fail "$name: io_path request did not take"
		[ "$(cat "$sys/io_path_reason")" = "io_path written by user" ] ||
			fail "$name: io_path_reason '$(cat "$sys/io_path_reason")' after the user chose"
		vblk_fio_verified 60 "medium-$name-user" "$dev" --size=4M
		echo auto >"$sys/io_path" || fail "$name: writing auto failed"
		check "$name" "$sys"
		ktap_log "$name: request written by user, then auto: back to $(cat "$sys/io_path")"
	fi
	n=$((n + 1))
done
[ $n -gt 0 ] || fail "no disk with expect.path"
ktap_log "$n disks as their medium says (bio_latency_us $limit)"
exit $KSFT_PASS
