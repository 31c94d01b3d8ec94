#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build vblk-adaptive-dkms_<version>_all.deb (make deb) from the checkout's
# tracked files, with dpkg-deb from a staged tree: no network, no
# debhelper.  The version is dkms.conf's PACKAGE_VERSION.
#
#   usr/src/vblk-adaptive-<version>/   Kbuild Makefile dkms.conf guest/ include/
#   usr/share/initramfs-tools/hooks/vblk-adaptive
#   usr/share/initramfs-tools/scripts/init-top/vblk-adaptive
#   usr/lib/dracut/dracut.conf.d/50-vblk-adaptive.conf
#   usr/share/doc/vblk-adaptive-dkms/   copyright, the user guide
#   DEBIAN/ control postinst prerm postrm (packaging/debian/)
#
# Usage: mkdeb.sh [OUTDIR]   (default out/deb); prints the .deb's path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

outdir=${1:-$VBLK_ROOT/out/deb}
conf=$VBLK_ROOT/dkms.conf
pkgdir=$VBLK_ROOT/packaging/debian
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"$/\1/p' "$conf")
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$conf")
[ -n "$name" ] && [ -n "$ver" ] || die "$conf: no PACKAGE_NAME or PACKAGE_VERSION"
pkg=$name-dkms

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
stage=$(mktemp -d /var/tmp/vblk-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"

src=$stage/usr/src/$name-$ver
mkdir -p "$src"
git -C "$VBLK_ROOT" ls-files -z -- Kbuild Makefile dkms.conf guest include |
	(cd "$VBLK_ROOT" && xargs -0 cp --parents -t "$src")
[ -f "$src/dkms.conf" ] && [ -f "$src/guest/Kbuild" ] || die "the sources are incomplete in $src"

install -D -m 0755 "$pkgdir/initramfs-hook" "$stage/usr/share/initramfs-tools/hooks/$name"
install -D -m 0755 "$pkgdir/initramfs-init-top" \
	"$stage/usr/share/initramfs-tools/scripts/init-top/$name"
install -D -m 0644 "$pkgdir/dracut.conf" "$stage/usr/lib/dracut/dracut.conf.d/50-$name.conf"
install -D -m 0644 "$pkgdir/copyright" "$stage/usr/share/doc/$pkg/copyright"
install -D -m 0644 "$VBLK_ROOT/Documentation/block/virtio_blk-adaptive.rst" \
	"$stage/usr/share/doc/$pkg/virtio_blk-adaptive.rst"

mkdir -p "$stage/DEBIAN"
for s in postinst prerm postrm; do
	sed "s/@VERSION@/$ver/g" "$pkgdir/$s" >"$stage/DEBIAN/$s"
	chmod 0755 "$stage/DEBIAN/$s"
done
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$ver/g" -e "s/@SIZE@/$size/g" "$pkgdir/control.in" >"$stage/DEBIAN/control"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"

# Files owned by root whoever builds; the same mode bits everywhere.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage/usr/src" -type f -exec chmod 0644 {} +
deb=$outdir/${pkg}_${ver}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
log "built $deb"
echo "$deb"
