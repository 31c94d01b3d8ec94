#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# sysfs semantics of io_path and io_path_reason, and every kind of bad
# input: a bad value gets EINVAL and changes nothing, concurrent writers
# leave a consistent state, the io_path module parameter validates too.
#
# vmtest guest ours-capable --driver ours
# vmtest disk d1 ram size=64M dev.num-queues=2 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
. ./test_common.sh
. ./vblk_lib.sh

vblk_require ours
dev=$(vblk_data_disk) || fail "no data disk"
sys=$(vblk_sys "$dev")

for a in io_path io_path_reason serial cache_type; do
	[ -r "$sys/$a" ] || fail "$sys/$a missing"
done
[ "$(cat "$sys/serial")" != "" ] || fail "empty serial"

# The path chosen at probe follows the parameter and, under auto, the
# medium (vblk_medium.sh checks each field; here: what auto chose is what
# "auto" written gives again).
param=$(vblk_modparam io_path) || param=auto
path=$(cat "$sys/io_path")
reason=$(cat "$sys/io_path_reason")
case $param in
auto)
	vblk_auto_reason "$reason" || fail "probe reason '$reason' is not auto's"
	want=$path wreason=$reason ;;
*)	want=$param wreason="io_path module parameter"
	[ "$path" = "$want" ] || fail "probe path $path, expected $want (io_path=$param)"
	[ "$reason" = "$wreason" ] || fail "probe reason '$reason', expected '$wreason'" ;;
esac

# Good values, with and without a newline.
for p in bio request bio auto request; do
	echo "$p" >"$sys/io_path" || fail "writing $p failed"
	got=$(cat "$sys/io_path")
	reason=$(cat "$sys/io_path_reason")
	if [ "$p" = auto ]; then
		[ "$param" = auto ] || { vblk_auto_reason "$reason" ||
			fail "wrote auto, reason '$reason' is not auto's"; continue; }
		exp=$want
		er=$wreason
	else
		exp=$p
		er="io_path written by user"
	fi
	[ "$got" = "$exp" ] || fail "wrote $p, reads $got"
	[ "$reason" = "$er" ] || fail "wrote $p, reason '$reason', expected '$er'"
done
printf bio >"$sys/io_path" || fail "writing bio without newline failed"
[ "$(cat "$sys/io_path")" = bio ] || fail "bio without newline not applied"

# Bad values: each must fail with EINVAL and leave path and reason alone.
for start in bio request; do
	vblk_set_path "$sys" $start || fail "cannot set $start"
	before="$(cat "$sys/io_path")/$(cat "$sys/io_path_reason")"
	for bad in "BIO" "Request" "bi" "bioo" " bio" "bio request" "auto2" \
		   "0" "1" "-1" "none" "mq" "bio\n\n" "\nbio" \
		   "$(head -c 300 /dev/zero | tr '\0' x)"; do
		err=$(printf "$bad" |
		      dd of="$sys/io_path" bs=4096 conv=notrunc 2>&1) &&
			fail "'$bad' was accepted"
		case $err in
		*"Invalid argument"*) ;;
		*) fail "'$bad': expected EINVAL, got: $err" ;;
		esac
		after="$(cat "$sys/io_path")/$(cat "$sys/io_path_reason")"
		[ "$after" = "$before" ] || fail "'$bad' changed $before to $after"
	done
	# A lone newline is an empty value.
	{ echo >"$sys/io_path"; } 2>/dev/null && fail "empty value was accepted"
	after="$(cat "$sys/io_path")/$(cat "$sys/io_path_reason")"
	[ "$after" = "$before" ] || fail "empty value changed $before to $after"
done
ktap_log "bad values rejected with EINVAL, state unchanged"

# io_path_reason is read-only.
{ echo auto >"$sys/io_path_reason"; } 2>/dev/null &&
	fail "io_path_reason accepted a write"

# Concurrent writers and readers.
pids=
for w in 1 2 3 4; do
	(
		i=0
		while [ $i -lt 150 ]; do
			case $(((i + w) % 4)) in
			0) v=bio ;; 1) v=request ;; 2) v=auto ;; 3) v=junk ;;
			esac
			{ echo $v >"$sys/io_path"; } 2>/dev/null
			cat "$sys/io_path" "$sys/io_path_reason" >/dev/null
			i=$((i + 1))
		done
	) &
	pids="$pids $!"
done
for p in $pids; do wait "$p"; done
path=$(cat "$sys/io_path")
reason=$(cat "$sys/io_path_reason")
case "$path/$reason" in
"bio/io_path written by user"|"request/io_path written by user") ;;
*)	vblk_auto_reason "$reason" && { [ "$param" != auto ] || [ "$path" = "$want" ]; } ||
		fail "inconsistent state after concurrent writes: $path/$reason" ;;
esac
ktap_log "600 concurrent writes: $path ($reason)"

# The module parameter validates like the attribute.
mp=/sys/module/virtio_blk/parameters/io_path
old=$(cat $mp)
for bad in BIO bi "" junk "bio request"; do
	{ printf '%s\n' "$bad" >$mp; } 2>/dev/null && fail "io_path parameter accepted '$bad'"
	[ "$(cat $mp)" = "$old" ] || fail "io_path parameter changed by '$bad'"
done
for good in bio request auto "$old"; do
	echo "$good" >$mp || fail "io_path parameter refused $good"
	[ "$(cat $mp)" = "$good" ] || fail "io_path parameter reads $(cat $mp) after $good"
done
ktap_log "io_path parameter validated"

# Leave the disk as found (the reason stays "io_path written by user" if
# io_path= forced it).
if [ "$param" = auto ]; then
	echo auto >"$sys/io_path"
else
	vblk_set_path "$sys" "$want" || true
fi
exit $KSFT_PASS
