#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Live path switching: at least 100 switches of io_path while fio writes
# (direct and buffered, with flushes) and verifies.  Any I/O error, any
# verification failure or any failed switch fails the test.
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || { ktap_log "not the adaptive driver"; exit $KSFT_SKIP; }
dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")
switches=${VBLK_SWITCHES:-120}
lbs=$(cat "$sys/queue/logical_block_size")
done_flag=/tmp/vblk_switch.done
rm -f $done_flag

(
	i=0
	while [ $i -lt "$switches" ]; do
		[ $((i % 2)) = 0 ] && p=bio || p=request
		echo $p >"$sys/io_path" || exit 1
		[ "$(cat "$sys/io_path")" = $p ] || exit 1
		sleep 0.03
		i=$((i + 1))
	done
	: >$done_flag
) &
switcher=$!

runs=0
while [ ! -e $done_flag ] || [ $runs = 0 ]; do
	fio --output=/tmp/vblk_switch.fio --ioengine=libaio --verify=crc32c \
	    --verify_fatal=1 --filename="$dev" --rw=randwrite \
	    --name=direct --direct=1 --iodepth=16 --bsrange=$lbs-2m \
	    --size=12M --offset=0 --fsync=8 \
	    --name=buffered --direct=0 --iodepth=1 --bsrange=$((lbs > 4096 ? lbs : 4096))-256k \
	    --size=8M --offset=16M --fsync=4 ||
		{ cat /tmp/vblk_switch.fio; kill $switcher; fail "fio run $runs failed"; }
	grep -q "err= 0" /tmp/vblk_switch.fio ||
		{ cat /tmp/vblk_switch.fio; kill $switcher; fail "fio run $runs reported errors"; }
	runs=$((runs + 1))
	if ! kill -0 $switcher 2>/dev/null && [ ! -e $done_flag ]; then
		fail "a switch failed"
	fi
done
wait $switcher || fail "a switch failed"

inflight=$(cat "$sys/inflight")
set -- $inflight
[ "$1" = 0 ] && [ "$2" = 0 ] || fail "I/O still in flight: $inflight"
ktap_log "$switches switches over $runs verified fio runs on $dev"
exit $KSFT_PASS
