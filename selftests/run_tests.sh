#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In-guest runner: run the named selftests, one KTAP result line each,
# their own output nested as "# " lines.  Exit status 4 means skip.  A
# test named NAME:SECONDS runs with that timeout instead of the one in
# settings.
cd "$(dirname "$0")" || exit 1
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
	{ timeout -s KILL "$timeout" "./$t" 2>&1; echo $? >"$rcfile"; } |
		while IFS= read -r line; do echo "# $line"; done
	rc=$(cat "$rcfile")
	case $rc in
	0) echo "ok $n selftests: vblk: $t" ;;
	4) echo "ok $n selftests: vblk: $t # SKIP" ;;
	137) echo "not ok $n selftests: vblk: $t # TIMEOUT ${timeout}s"; failed=1 ;;
	*) echo "not ok $n selftests: vblk: $t # exit=$rc"; failed=1 ;;
	esac
done
exit $failed
