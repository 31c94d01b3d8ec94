#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build a minimal Debian bookworm system for the debian-guest test: root
# on an ext4 file system that fills a raw virtio disk, systemd as init,
# initramfs-tools, dkms, and the bookworm-backports Linux of the guest
# kernel's version (tools/get-kernel.sh) with its headers, so that DKMS
# can build for it.  mmdebstrap fetches from the machine's own apt
# sources (the URIs of /etc/apt/sources.list.d/debian.sources, read at run
# time); the image keeps no sources list.
#
# Cached as $VBLK_CACHE/debian-image/<key>/{root.img,vmlinuz,initrd.img},
# the key a hash of this script, the package list and the kernel release:
# it is built again only when one of those changes.  Prints the
# directory.  Nothing in the image is ours: the test installs the package
# into a copy.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "mkdebimage needs root (mmdebstrap, mkfs)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (run tools/host-setup.sh)"
. "$(bash "$VBLK_ROOT/tools/get-kernel.sh")"

SUITE=bookworm
SIZE=4G
PKGS="systemd-sysv udev kmod initramfs-tools e2fsprogs util-linux zstd openssl
      dkms linux-image-$KVER linux-headers-$KVER"

key=$( { cat "$0"; echo "$PKGS"; } | sha256sum | cut -c1-16)
top=$VBLK_CACHE/debian-image
dir=$top/$key
mkdir -p "$top"
exec 9>"$top/lock"
flock 9
if [ -f "$dir/.complete" ]; then
	echo "$dir"
	exit 0
fi

src=/etc/apt/sources.list.d/debian.sources
[ -r "$src" ] || die "$src not found: cannot derive the Debian mirror"
# The first URIs line is the archive, one naming -security the security one.
uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$src")
sec=$(awk '/^URIs:/ && $2 ~ /security/ {print $2; exit}' "$src")
[ -n "$uri" ] || die "no archive URIs: line in $src"
mirrors=("deb $uri $SUITE main" "deb $uri $SUITE-updates main"
	 "deb $uri $SUITE-backports main")
[ -n "$sec" ] && mirrors+=("deb $sec $SUITE-security main")

# A build that was killed may have left mmdebstrap's mounts (proc, sys,
# dev/pts) under its root: take them away before deleting anything.
unmount_under() {
	local m
	for m in $(awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
		umount -l "$m" || die "cannot unmount $m"
	done
}
unmount_under "$top"
root=$dir/root
trap 'unmount_under "$dir"' EXIT
# A build that stopped after mmdebstrap finished resumes from there.
if [ -f "$dir/.bootstrapped" ] && [ -d "$root" ]; then
	log "resuming the Debian image in $dir after mmdebstrap"
else
	rm -rf --one-file-system "$dir"
	mkdir -p "$dir"
	log "building a Debian $SUITE image with Linux $KVER in $dir"
	# The log names no mirror: URIs are replaced as it is written.
	# shellcheck disable=SC2016 # expanded by the inner shell
	MIRROR=$uri SECURITY=${sec:-<none>} run_logged "$dir/mmdebstrap.log" "mmdebstrap $SUITE ($KVER)" \
		bash -c 'mmdebstrap --mode=root --variant=minbase \
			--aptopt="APT::Install-Recommends \"false\"" \
			--include="$(echo $3 | tr " " ,)" "$1" "$2" "${@:4}" 2>&1 |
			sed -u -e "s|$MIRROR|<mirror>|g" -e "s|$SECURITY|<security>|g"
			exit "${PIPESTATUS[0]}"' mmdebstrap "$SUITE" "$root" "$PKGS" "${mirrors[@]}"
	touch "$dir/.bootstrapped"
fi

rm -f "$root/etc/apt/sources.list" "$root"/boot/*.dpkg-bak
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
echo vblk-debian >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
# A root shell on the console without a password, for debugging by hand.
chroot "$root" passwd -d root >/dev/null
[ -f "$root/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER in the image"
[ -f "$root/boot/initrd.img-$KVER" ] || die "no /boot/initrd.img-$KVER in the image"
# (build is an absolute link, into the image)
[ -e "$root/usr/src/linux-headers-$KVER/Makefile" ] || die "no headers for $KVER in the image"
cp "$root/boot/vmlinuz-$KVER" "$dir/vmlinuz"
cp "$root/boot/initrd.img-$KVER" "$dir/initrd.img"
echo "$KVER" >"$dir/kver"

log "making the ext4 root file system ($SIZE)"
mkfs.ext4 -q -L vblk-root -d "$root" "$dir/root.img.tmp" "$SIZE"
mv "$dir/root.img.tmp" "$dir/root.img"
unmount_under "$dir"
rm -rf --one-file-system "$root"
touch "$dir/.complete"
find "$top" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf --one-file-system {} +
log "Debian image: $dir/root.img ($(du -h "$dir/root.img" | cut -f1) used)"
echo "$dir"
