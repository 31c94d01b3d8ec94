#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the guest's base initramfs: busybox, fio, systemd-udevd + udevadm,
# a few block tools (blkzone, and mkfs.btrfs with the btrfs module: btrfs
# is what issues zone appends on a zoned disk), the stock virtio_blk and
# ext4 modules, and our /init.
# Nothing else from the host.  Tests, our module and the per-run settings
# are not in here: tools/vmrun appends them as a second cpio archive (the
# kernel unpacks concatenated archives in order), so the base image only
# changes when this script, the guest init or the kernel changes.
#
# Prints the path of the cached base image.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

. "$(bash "$VBLK_ROOT/tools/get-kernel.sh")"

OUT=$VBLK_CACHE/initramfs
BINS="/bin/busybox /usr/bin/fio /lib/systemd/systemd-udevd /bin/udevadm
      /sbin/mke2fs /sbin/mkfs.btrfs /sbin/blkdiscard /sbin/blkzone /bin/lsblk
      /sbin/blkid"
UDEV_RULES="50-udev-default.rules 60-block.rules 60-persistent-storage.rules"
# Stock modules the tests may need; dependencies are added by modinfo.
MODS="virtio_blk ext4 btrfs crc32c_generic crc32c-intel"

key=$( { cat "$0" "$VBLK_ROOT/tools/guest/init"; echo "$KVER"; for b in $BINS; do
	 sha256sum "$b"; done; } | sha256sum | cut -c1-16)
img=$OUT/base-$key.cpio.gz
mkdir -p "$OUT"
exec 9>"$OUT/lock"
flock 9
if [ -f "$img" ]; then
	echo "$img"
	exit 0
fi

root=$(mktemp -d "$OUT/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
log "building the guest initramfs ($KVER)"

copy_file() {	# copy a host file to the same path in the image
	mkdir -p "$root$(dirname "$1")"
	cp -L "$1" "$root$1"
}

copy_bin() {	# a binary with the shared libraries it needs
	local lib
	[ -x "$1" ] || die "$1 not found (run tools/host-setup.sh)"
	copy_file "$1"
	for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] || copy_file "$lib"
	done
}

mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,root,lib/modules}
for b in $BINS; do
	copy_bin "$b"
done
# fio loads its I/O engines' libraries (libaio, io_uring) at run time.
for lib in /usr/lib/x86_64-linux-gnu/libaio.so.1* /usr/lib/x86_64-linux-gnu/liburing.so.2*; do
	[ -e "$lib" ] && copy_file "$lib"
done
# Applets at their usual paths: the kernel runs /sbin/modprobe to load
# modules on demand (file systems, crc32c).
mkdir -p "$root/usr/bin" "$root/usr/sbin"
for a in $("$root/bin/busybox" --list-full); do
	[ -e "$root/$a" ] || ln -s /bin/busybox "$root/$a"
done
mkdir -p "$root/lib/udev/rules.d" "$root/etc/udev/rules.d"
for r in $UDEV_RULES; do
	cp "/lib/udev/rules.d/$r" "$root/lib/udev/rules.d/"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\ndisk:x:6:\n' >"$root/etc/group"

# Modules, decompressed so busybox modprobe/insmod can load them.
KROOT=${MODDIR%/lib/modules/*}
add_module() {
	local path rel dep
	path=$(modinfo -b "$KROOT" -k "$KVER" -n "$1") || die "module $1 not found"
	rel=${path#"$KROOT"}
	rel=${rel%.xz}
	[ -e "$root$rel" ] && return 0
	mkdir -p "$root$(dirname "$rel")"
	xz -dc "$path" >"$root$rel"
	for dep in $(modinfo -F depends "$path" | tr ',' ' '); do
		add_module "$dep"
	done
}
for m in $MODS; do
	add_module "$m"
done
cp "$MODDIR"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$root" "$KVER"
echo "$KVER" >"$root/etc/kernel-release"

install -m 0755 "$VBLK_ROOT/tools/guest/init" "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$img.tmp"
mv "$img.tmp" "$img"
find "$OUT" -maxdepth 1 -name "base-*.cpio.gz" ! -name "$(basename "$img")" -delete
log "initramfs: $img ($(du -h "$img" | cut -f1))"
echo "$img"
