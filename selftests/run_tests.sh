#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In-guest runner: run the named selftests, one KTAP result line each,
# their own output nested as "# " lines, then how long each took.  Exit
# status 4 means skip.  A test named NAME:SECONDS runs with that timeout
# instead of the one in settings.
cd "$(dirname "$0")" || exit 1

# restore: after a test killed at its timeout (SIGKILL: its EXIT trap
# never ran), undo what a test may hold for its duration, so that the
# next test starts as after a clean exit and fails only for itself:
# udevd stopped (vblk_udev_hold), CPUs taken offline.
restore() {
	local c p comm
	for p in /proc/[0-9]*; do
		read -r comm <"$p/comm" 2>/dev/null || continue
		[ "$comm" = systemd-udevd ] || continue
		[ "$(cut -d' ' -f3 "$p/stat")" = T ] || continue
		kill -CONT "${p#/proc/}" &&
			echo "# restored after $1: udevd (${p#/proc/}) runs again"
	done
	for c in /sys/devices/system/cpu/cpu[0-9]*/online; do
		[ -e "$c" ] && [ "$(cat "$c")" = 0 ] || continue
		echo 1 >"$c" && echo "# restored after $1: ${c%/online} online"
	done
}

# leftovers MARK OWN: kill every process whose environment holds the
# variable MARK (NAME=VALUE, matched whole: the entries end with NULs),
# what a test started and left behind, killed at its timeout or not, and
# name them.  Such a process may hold the test's output pipe, and the
# runner would wait for it for ever.  The process whose command line is
# OWN is the runner's own (busybox timeout's watchdog, which would end by
# itself within a second): killed without a word.  A few rounds, for a
# process that forks as it is killed.
leftovers() {
	local round f p left killed=
	for round in 1 2 3 4 5; do
		left=
		for f in $(grep -lzxF "$1" /proc/[0-9]*/environ 2>/dev/null); do
			p=${f#/proc/}
			p=${p%/environ}
			if [ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" != "$2 " ]; then
				left="$left $p"
				case "$killed " in
				*" $p("*) ;;
				*) killed="$killed $p($(cat "/proc/$p/comm" 2>/dev/null))" ;;
				esac
			fi
			kill -KILL "$p" 2>/dev/null
		done
		[ -n "$left" ] || break
		sleep 0.2
	done
	[ -z "$killed" ] || echo "killed what the test left behind:$killed"
	[ -z "$left" ] || echo "still there after $round rounds of SIGKILL:$left"
}

default_timeout=$(sed -n 's/^timeout=//p' settings)

echo "TAP version 13"
echo "1..$#"
n=0
failed=0
for t in "$@"; do
	n=$((n + 1))
	timeout=${default_timeout:-120}
	case $t in
	*:*) timeout=${t##*:}; t=${t%:*} ;;
	esac
	if [ ! -x "./$t" ]; then
		echo "not ok $n selftests: vblk: $t # no such test"
		failed=1
		continue
	fi
	rcfile=/tmp/.rc.$$
	# Everything the test starts inherits the mark.
	mark=VBLK_SELFTEST=$$.$n
	start=$(date +%s)
	{ env "$mark" timeout -s KILL "$timeout" "./$t" 2>&1
	  echo $? >"$rcfile"
	  leftovers "$mark" "timeout -s KILL $timeout ./$t"; } |
		while IFS= read -r line; do echo "# $line"; done
	rc=$(cat "$rcfile")
	echo "# $t took $(($(date +%s) - start)) s of its $timeout s"
	case $rc in
	0) echo "ok $n selftests: vblk: $t" ;;
	4) echo "ok $n selftests: vblk: $t # SKIP" ;;
	137) echo "not ok $n selftests: vblk: $t # TIMEOUT ${timeout}s"; failed=1
	     restore "$t" ;;
	*) echo "not ok $n selftests: vblk: $t # exit=$rc"; failed=1 ;;
	esac
done
exit $failed
