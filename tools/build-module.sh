#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build an out-of-tree module against the guest kernel's headers with W=1
# (and sparse on every file with --sparse).  Fails when the build prints
# any warning.  Usage: build-module.sh [--sparse] [DIR]  (default: the
# project's top-level Kbuild, i.e. guest/virtio_blk.ko).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sparse=
if [ "${1:-}" = --sparse ]; then
	sparse="C=2"
	shift
fi
dir=$(cd "${1:-$VBLK_ROOT}" && pwd)
. "$(bash "$VBLK_ROOT/tools/get-kernel.sh")"
if [ -n "$sparse" ] && ! command -v sparse >/dev/null; then
	die "sparse is not installed (run tools/host-setup.sh)"
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
if ! make -C "$KDIR" M="$dir" W=1 $sparse -j"$(nproc)" modules >"$out" 2>&1; then
	cat "$out" >&2
	die "module build failed in $dir"
fi
if grep -E 'warning:|error:' "$out" >&2; then
	die "the build of $dir is not warning-free (W=1${sparse:+, sparse})"
fi
log "built $(cd "$dir" && find . -name '*.ko' | tr '\n' ' ')in $dir"
