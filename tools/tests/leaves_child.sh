#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A selftest that leaves a child behind holding its output: the VM
# runner's self-test checks that the in-guest runner kills it and goes
# on.  Installed twice: as leaves_child_ok.sh it passes at once, as
# leaves_child.sh it sleeps until the runner's timeout kills it.
sleep 1000 &
echo "left child $!"
case $0 in
*_ok.sh) exit 0 ;;
esac
sleep 1000
