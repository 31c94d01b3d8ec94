#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the host QEMU: upstream 10.0.2 (Debian bookworm-backports source
# package, orig tarball) with host-qemu-patch/*.patch applied by "git am",
# then tools/qemu-test-patches/*.patch: changes that are not part of the
# series, test-only ones (e.g. a device knob the tests need) and fixes of
# QEMU 10.0.2 bugs the tests meet that upstream fixed later (each names
# the upstream commit).
#
# The source is kept as a git tree under $VBLK_CACHE/qemu/src with two
# tags: "pristine" (the tarball as shipped) and "base" (pristine plus a
# build-environment fix for the +ds tarball).  The series is applied on a
# branch from "base"; git only rewrites the files that differ, so the one
# out-of-tree build directory rebuilds incrementally.  The build is keyed
# by QEMU version + series hash: the same series is reused as is, a
# changed series is re-applied and rebuilt.
#
# Prints the path of the build directory on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

QEMU_PKG=${QEMU_PKG:-qemu/bookworm-backports}
QDIR=$VBLK_CACHE/qemu
SRC=$QDIR/src
BUILD=$QDIR/build
SERIES_DIR=$VBLK_ROOT/host-qemu-patch
TEST_PATCH_DIR=$VBLK_ROOT/tools/qemu-test-patches
# ninja targets: the emulator, the TCG plugins (libinsn.so for the
# benchmark) and the qtest binary that holds the virtio-blk tests.
TARGETS="qemu-system-x86_64 contrib-plugins test-plugins tests/qtest/qos-test"
# vhost-user: vhost-user-blk-pci, served by selftests/host/vhost_user_blk.py
# to show the guest device configurations no stock device presents.
CONFIGURE_FLAGS="--target-list=x86_64-softmmu --without-default-features
	--enable-tcg --enable-plugins --enable-vhost-user --disable-docs
	--disable-download --disable-install-blobs --python=/usr/bin/python3"

mkdir -p "$QDIR"
exec 9>"$QDIR/lock"
flock 9

series() {
	[ -d "$SERIES_DIR" ] || return 0
	find "$SERIES_DIR" -maxdepth 1 -name "0*.patch" ! -name "0000-*" | sort
}

test_patches() {
	[ -d "$TEST_PATCH_DIR" ] || return 0
	find "$TEST_PATCH_DIR" -maxdepth 1 -name "0*.patch" | sort
}

fetch_source() {
	local tarball
	tarball=$(ls "$QDIR"/dl/qemu_*.orig.tar.xz 2>/dev/null | tail -n1 || true)
	if [ -z "$tarball" ]; then
		mkdir -p "$QDIR/dl"
		log "downloading the QEMU source ($QEMU_PKG)"
		# The .dsc and debian tarball may not be served; the orig tarball
		# is all we need, so judge success by its presence.
		(cd "$QDIR/dl" && apt-get source --download-only "$QEMU_PKG") \
			>"$QDIR/dl/apt-source.log" 2>&1 || true
		tarball=$(ls "$QDIR"/dl/qemu_*.orig.tar.xz 2>/dev/null | tail -n1 || true)
		[ -n "$tarball" ] || { cat "$QDIR/dl/apt-source.log" >&2; die "no QEMU orig tarball"; }
	fi
	echo "$tarball"
}

make_git_tree() {
	local tarball=$1
	git -C "$SRC" rev-parse -q --verify base >/dev/null 2>&1 && return
	log "unpacking $(basename "$tarball") into a git tree"
	rm -rf "$SRC"
	mkdir -p "$SRC"
	tar -xJf "$tarball" -C "$SRC" --strip-components=1
	git -C "$SRC" init -q
	git -C "$SRC" config user.name "vblk-adaptive bench"
	git -C "$SRC" config user.email "bench@vblk-adaptive.invalid"
	git -C "$SRC" add -A -f
	git -C "$SRC" commit -q -m "QEMU $(cat "$SRC/VERSION") (pristine orig tarball)"
	git -C "$SRC" tag pristine
	# The +ds tarball drops the edk2 firmware .bz2 files, but meson still
	# tries to unpack them when bzip2 is installed.
	sed -i "s/^\(    unpack_edk2_blobs = bzip2.found()\)$/\1 and fs.exists('pc-bios\/edk2-x86_64-code.fd.bz2')/" \
		"$SRC/meson.build"
	git -C "$SRC" commit -q -a -m "bench: do not unpack edk2 blobs missing from the +ds tarball"
	git -C "$SRC" tag base
}

apply_series() {
	local p
	git -C "$SRC" am --abort >/dev/null 2>&1 || true
	git -C "$SRC" checkout -q -f -B series base
	git -C "$SRC" clean -q -fdx
	for p in $(series) $(test_patches); do
		if ! git -C "$SRC" am -q --3way "$p" >&2; then
			git -C "$SRC" am --abort >/dev/null 2>&1 || true
			die "patch $(basename "$p") does not apply to QEMU $(cat "$SRC/VERSION")"
		fi
	done
	log "applied $(series | wc -l) patch(es) from host-qemu-patch/ and" \
		"$(test_patches | wc -l) from tools/qemu-test-patches/"
}

tarball=$(fetch_source)
make_git_tree "$tarball"
key=$( { cat "$SRC/VERSION"; echo "$CONFIGURE_FLAGS $TARGETS";
	  series | xargs -r cat; test_patches | xargs -r cat; } |
	sha256sum | cut -c1-16)
if [ "$(cat "$BUILD/.vblk-key" 2>/dev/null)" = "$key" ] &&
   [ -x "$BUILD/qemu-system-x86_64" ]; then
	log "QEMU build $key is current"
	echo "$BUILD"
	exit 0
fi

apply_series
rm -f "$BUILD/.vblk-key"
# Configure again when the flags changed (the stamp records the last ones).
if [ ! -f "$BUILD/build.ninja" ] ||
   [ "$(cat "$BUILD/.vblk-configure" 2>/dev/null)" != "$(echo $CONFIGURE_FLAGS)" ]; then
	mkdir -p "$BUILD"
	# shellcheck disable=SC2086
	run_logged "$QDIR/configure.log" "configuring QEMU" \
		sh -c "cd '$BUILD' && '$SRC/configure' $(echo $CONFIGURE_FLAGS)"
	echo $CONFIGURE_FLAGS >"$BUILD/.vblk-configure"
fi
# shellcheck disable=SC2086
run_logged "$QDIR/ninja.log" "building QEMU ($(nproc) jobs, ~6-10 min from scratch)" \
	ninja -C "$BUILD" $TARGETS
echo "$key" >"$BUILD/.vblk-key"
echo "$BUILD"
