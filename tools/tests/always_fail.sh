#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A selftest that always fails: the VM runner's self-test checks that its
# failure reaches the host as "not ok" and fails the run.
echo "failing on purpose"
exit 1
