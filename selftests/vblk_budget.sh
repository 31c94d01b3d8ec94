#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The bio path is bounded: each queue takes at most its budget of bio
# commands (twice its tags, see debugfs "budget"), and submitters beyond
# it wait.  Buffered writeback of far more than that, on the bio path of
# a small ring, must make submitters wait ("waits" grows), lose nothing
# (read back after a cache drop) and let a direct read through meanwhile.
#
# A small ring with 4k blocks, everything on the bio path: the budget,
# and path switches, discards and cache modes there.
# vmtest guest ours-smallring --driver ours --module-param io_path=bio
# vmtest disk d1 ram size=64M dev.queue-size=16 dev.num-queues=2 \
#     dev.logical_block_size=4096 dev.physical_block_size=4096
# vmtest run vblk_switch.sh vblk_discard vblk_cache.sh
. ./test_common.sh
. ./vblk_lib.sh

vblk_ours || fail "needs the adaptive driver"
vblk_debugfs
sys=$(vblk_capable_writable) || fail "no writable bio-capable disk"
dev=/dev/${sys##*/}
queues=/sys/kernel/debug/virtio_blk/${sys##*/}/queues
vblk_set_path "$sys" bio || fail "cannot switch $dev to bio"

budget=$(awk '{ for (i = 2; i < NF; i += 2) if ($i == "budget") print $(i + 1); exit }' "$queues")
[ -n "$budget" ] && [ "$budget" -gt 0 ] || fail "no budget in $queues"

w0=$(vblk_qstat "$queues" waits)
dd if=/dev/urandom of=/tmp/vblk_budget.src bs=1M count=32 2>/dev/null
dd if=/tmp/vblk_budget.src of="$dev" bs=1M 2>/dev/null || fail "buffered write failed"
sync &
syncpid=$!
dd if="$dev" of=/dev/null bs=4k count=1 skip=2000 iflag=direct 2>/dev/null ||
	fail "a direct read during writeback failed"
vblk_wait 120 "the end of sync on $dev" vblk_exited $syncpid
wait $syncpid || fail "sync failed"
echo 3 >/proc/sys/vm/drop_caches
head -c 33554432 "$dev" | cmp -s - /tmp/vblk_budget.src || fail "$dev: written data did not read back"
w1=$(vblk_qstat "$queues" waits)
[ "$w1" -gt "$w0" ] || fail "32 MiB of writeback never waited for the budget of $budget"
no_bios() { [ "$(vblk_qstat "$queues" bios)" = 0 ]; }
vblk_wait 10 "no bio commands left on $dev" no_bios
ktap_log "$dev: budget $budget per queue, $((w1 - w0)) waits under 32 MiB of writeback, data intact"
exit $KSFT_PASS
