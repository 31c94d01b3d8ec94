#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the module into a copy of the guest's /lib/modules the way a
# user would on the guest itself, for the install tests:
#
#   install-tree.sh make OUT     make install INSTALL_MOD_PATH=OUT
#   install-tree.sh destdir OUT  make install DESTDIR=OUT
#   install-tree.sh dkms OUT     dkms add, build, install (then depmod,
#                                which dkms install runs on the target)
#   install-tree.sh make-uninstall OUT, dkms-remove OUT
#                                install as make and dkms do, check it,
#                                then take it out again with make
#                                uninstall or dkms remove
#
# OUT/lib/modules/$KVER starts as the base initramfs's module tree (the
# stock virtio_blk, ext4 and their depmod indexes), so depmod sees both
# virtio_blk modules as it would on an installed guest.  The sources are
# the repository's tracked files, copied: nothing is built in the checkout.
# dkms runs on private trees (--sourcetree, --dkmstree, --installtree) and
# is kept from signing, which would create a MOK key under /var/lib/dkms.
#
# Fails unless the tree ends up with exactly one virtio_blk in updates/,
# of dkms.conf's version, and modules.dep resolves virtio_blk to it; the
# removals must leave none there and virtio_blk resolving to the stock
# module again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# = 2 ] || die "usage: $0 make|destdir|dkms|make-uninstall|dkms-remove OUT"
method=$1
out=$(mkdir -p "$2" && cd "$2" && pwd)
. "$(bash "$VBLK_ROOT/tools/get-kernel.sh")"
base=$(bash "$VBLK_ROOT/tools/mkinitramfs.sh")
mods=$out/lib/modules/$KVER

rm -rf "$out/lib"
(cd "$out" && zcat "$base" | cpio -id --quiet 'lib/modules/*')
[ -f "$mods/kernel/drivers/block/virtio_blk.ko" ] || die "no stock virtio_blk in $base"

conf=$VBLK_ROOT/dkms.conf
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"$/\1/p' "$conf")
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$conf")
[ -n "$name" ] && [ -n "$ver" ] || die "$conf: no PACKAGE_NAME or PACKAGE_VERSION"

work=$(mktemp -d /var/tmp/vblk-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Nothing may land in the host's own module tree.
touch "$work/stamp"
host_had=
[ -e /lib/modules ] && host_had=/lib/modules
[ -e "/lib/modules/$KVER" ] && host_had=/lib/modules/$KVER
src=$work/src/$name-$ver
mkdir -p "$src"
git -C "$VBLK_ROOT" ls-files -z -- Kbuild Makefile dkms.conf guest include |
	(cd "$VBLK_ROOT" && xargs -0 cp --parents -t "$src")

case $method in
make|make-uninstall)
	make -C "$src" install KDIR="$KDIR" INSTALL_MOD_PATH="$out"
	;;
destdir)
	make -C "$src" install KDIR="$KDIR" DESTDIR="$out"
	;;
dkms|dkms-remove)
	command -v dkms >/dev/null || die "dkms is not installed (run tools/host-setup.sh)"
	trees=(--sourcetree "$work/src" --dkmstree "$work/dkms")
	mkdir -p "$work/dkms"
	export sign_file=$work/no-sign-file
	dkms add -m "$name" -v "$ver" "${trees[@]}"
	dkms build -m "$name" -v "$ver" -k "$KVER" --kernelsourcedir "$KDIR" "${trees[@]}" ||
		{ cat "$work/dkms/$name/$ver/build/make.log" >&2 || true; die "dkms build failed"; }
	dkms install -m "$name" -v "$ver" -k "$KVER" --kernelsourcedir "$KDIR" "${trees[@]}" \
		--installtree "$out/lib/modules" --no-depmod
	dkms status -m "$name" -v "$ver" "${trees[@]}" | grep -q ": installed" ||
		die "dkms status does not say installed"
	depmod -b "$out" "$KVER"
	;;
*)
	die "unknown method $method"
	;;
esac

host_untouched() {
	[ -z "$(find /lib/modules -newer "$work/stamp" -print -quit 2>/dev/null)" ] && return
	# Undo what we created, only that.
	case $host_had in
	"") rm -rf /lib/modules ;;
	/lib/modules) rm -rf "/lib/modules/$KVER" ;;
	esac
	die "$method wrote to the host's /lib/modules"
}
host_untouched
mapfile -t ours < <(cd "$mods" && find updates -name 'virtio_blk.ko*')
[ ${#ours[@]} = 1 ] || die "want one virtio_blk under $mods/updates, have: ${ours[*]}"
modinfo -b "$out" -k "$KVER" -F parm virtio_blk | grep -q '^io_path:' ||
	die "modinfo virtio_blk in $out does not resolve to the adaptive module"
resolved=$(modinfo -b "$out" -k "$KVER" -n virtio_blk)
[ "$resolved" = "$mods/${ours[0]}" ] || die "virtio_blk resolves to $resolved"
grep -q "^${ours[0]}:" "$mods/modules.dep" || die "modules.dep has no ${ours[0]}"
[ "$(modinfo -F version "$mods/${ours[0]}")" = "$ver" ] ||
	die "the module's version is not dkms.conf's PACKAGE_VERSION $ver"
grep -q '^kernel/drivers/block/virtio_blk.ko:' "$mods/modules.dep" &&
	die "modules.dep still lists the stock virtio_blk"
log "$method: $mods/${ours[0]} is what modprobe virtio_blk loads"

case $method in
make-uninstall)
	make -C "$src" uninstall KDIR="$KDIR" INSTALL_MOD_PATH="$out"
	# A second run has nothing to remove: an error, and nothing changes.
	cp "$mods/modules.dep" "$work/modules.dep"
	make -C "$src" uninstall KDIR="$KDIR" INSTALL_MOD_PATH="$out" 2>"$work/again" &&
		die "a second make uninstall succeeded"
	grep -q "nothing to uninstall" "$work/again" ||
		die "a second make uninstall did not say why it failed: $(cat "$work/again")"
	cmp -s "$mods/modules.dep" "$work/modules.dep" ||
		die "a failed make uninstall changed modules.dep"
	;;
dkms-remove)
	dkms remove -m "$name" -v "$ver" --all "${trees[@]}" --installtree "$out/lib/modules" \
		--no-depmod
	depmod -b "$out" "$KVER"
	;;
*)
	exit 0
	;;
esac
host_untouched
left=$(cd "$mods" && find . -path './updates/*' -name 'virtio_blk.ko*')
[ -z "$left" ] || die "$method left $left"
resolved=$(modinfo -b "$out" -k "$KVER" -n virtio_blk)
[ "$resolved" = "$mods/kernel/drivers/block/virtio_blk.ko" ] ||
	die "after $method virtio_blk resolves to $resolved, not the stock module"
modinfo -b "$out" -k "$KVER" -F parm virtio_blk | grep -q '^io_path:' &&
	die "after $method modinfo virtio_blk still shows the adaptive module"
log "$method: virtio_blk is the stock module again"
