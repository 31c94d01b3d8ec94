#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A selftest that holds udev (vblk_udev_hold) and is killed at its
# timeout before it lets it go, for the VM runner's self-test.  Installed
# twice: as holds_udev.sh it holds udev and sleeps until the runner kills
# it; as holds_udev_after.sh, the test after it, it checks that udevd
# runs again and handles an event.
. ./test_common.sh
. ./vblk_lib.sh

vblk_require udev udevadm
case $0 in
*_after.sh)
	pid=$(vblk_udevd) || fail "udevd does not run"
	[ "$(vblk_proc_state "$pid")" != T ] || fail "udevd ($pid) is still stopped"
	udevadm trigger --action=change /sys/block/vda || fail "udevadm trigger failed"
	vblk_udev_settle 60 "after the test that held udev"
	echo "udevd ($pid) runs and handled an event"
	exit 0 ;;
esac
vblk_udev_hold 60 "hold"
echo "udev held"
sleep 1000
