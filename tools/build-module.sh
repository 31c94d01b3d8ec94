#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build an out-of-tree module against the guest kernel's headers with W=1
# (and sparse on every file with --sparse).  Fails when the build prints
# any warning.  Usage: build-module.sh [--sparse] [--name NAME] [DIR]
# (default: the project's top-level Kbuild, i.e. guest/virtio_blk.ko).
# --name NAME builds the module as NAME.ko from a copy of the sources in
# $VBLK_CACHE/module-NAME-KEY, KEY being this checkout's (VBLK_CHECKOUT in
# lib.sh: Kbuild cannot put a second build of the same objects beside the
# first, and another checkout may be using its own copy meanwhile);
# tools/bench loads it beside the stock driver.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sparse=
if [ "${1:-}" = --sparse ]; then
	sparse="C=2"
	shift
fi
name=
if [ "${1:-}" = --name ]; then
	name=${2:?--name needs a module name}
	[[ $name =~ ^[a-z][a-z0-9_]*$ ]] || die "--name $name: not a module name"
	shift 2
fi
dir=$(cd "${1:-$VBLK_ROOT}" && pwd)
copy=
[ -z "$name" ] || copy=$VBLK_CACHE/module-$name-$VBLK_CHECKOUT
# One build of a directory (or of a --name copy) at a time: make check,
# make demo and the bench may run side by side.
mkdir -p "$VBLK_CACHE"
exec 9>"$VBLK_CACHE/build-module-$(printf '%s' "${copy:-$dir}" | md5sum | cut -c1-12).lock"
flock 9
if [ -n "$copy" ]; then
	rm -rf "$copy"
	mkdir -p "$copy"
	(cd "$dir" && cp -r Kbuild dkms.conf guest include "$copy/") ||
		die "copying the module's sources from $dir failed"
	find "$copy" -name '*.o' -o -name '*.ko' -o -name '*.mod*' -o -name '.*.cmd' |
		xargs -r rm -f
	dir=$copy
fi
. "$(bash "$VBLK_ROOT/tools/get-kernel.sh")"
if [ -n "$sparse" ] && ! command -v sparse >/dev/null; then
	die "sparse is not installed (run tools/host-setup.sh)"
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
if ! make -C "$KDIR" M="$dir" W=1 $sparse ${name:+VBLK_MODNAME=$name} \
	-j"$(nproc)" modules >"$out" 2>&1; then
	cat "$out" >&2
	die "module build failed in $dir"
fi
if grep -E 'warning:|error:' "$out" >&2; then
	die "the build of $dir is not warning-free (W=1${sparse:+, sparse})"
fi
log "built $(cd "$dir" && find . -name '*.ko' | tr '\n' ' ')in $dir"
