#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prepare a Debian 12 host: apt sources for deb-src and bookworm-backports
# (derived from the machine's own debian.sources, so no mirror name is
# written anywhere), and the packages the bench and the tests need (gdb
# reads the core of a QEMU that crashed).  Idempotent: a second run only
# checks that everything is there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "host-setup needs root (apt-get)"

SRC=/etc/apt/sources.list.d/debian.sources
OURS=/etc/apt/sources.list.d/vblk-adaptive.sources

# Packages from bookworm itself.
BASE_PKGS="build-essential pkg-config ninja-build libglib2.0-dev libfdt-dev
	python3-venv python3-matplotlib flex bison bzip2 xz-utils zstd cpio
	busybox-static fio seabios sparse perl udev kmod e2fsprogs fdisk dkms
	util-linux dpkg-dev dwarves ipxe-qemu btrfs-progs python3-sphinx mmdebstrap
	gdb"
# Packages that must come from bookworm-backports, installed one by one
# (-t bookworm-backports would also upgrade systemd, udev, ...).
BP_PKGS="meson python3-pycotap"

write_sources() {
	local uri
	[ -r "$SRC" ] || die "$SRC not found: cannot derive the Debian mirror"
	uri=$(awk '/^URIs:/ {print $2; exit}' "$SRC")
	[ -n "$uri" ] || die "no URIs: line in $SRC"
	cat >"$OURS.tmp" <<EOT
# Written by vblk-adaptive tools/host-setup.sh, URI taken from $SRC.
Types: deb-src
URIs: $uri
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
	if ! cmp -s "$OURS.tmp" "$OURS" 2>/dev/null; then
		mv "$OURS.tmp" "$OURS"
		return 0
	fi
	rm -f "$OURS.tmp"
	return 1
}

missing() {
	local p out=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || out="$out $p"
	done
	echo "$out"
}

need_update=0
write_sources && need_update=1
stamp="$VBLK_CACHE/apt-updated"
mkdir -p "$VBLK_CACHE"
# Refresh the lists when our sources changed or once a day.
if [ "$need_update" = 1 ] || [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
	run_logged "$VBLK_CACHE/apt-update.log" "apt-get update" apt-get update
	touch "$stamp"
fi

export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
m=$(missing $BASE_PKGS)
if [ -n "$m" ]; then
	# shellcheck disable=SC2086
	run_logged "$VBLK_CACHE/apt-install.log" "installing$m" \
		apt-get install -y --no-install-recommends $m
fi
for p in $BP_PKGS; do
	if [ -n "$(missing "$p")" ] ||
	   ! dpkg-query -W -f='${Version}' "$p" | grep -q bpo; then
		run_logged "$VBLK_CACHE/apt-install-$p.log" "installing $p (backports)" \
			apt-get install -y --no-install-recommends "$p/bookworm-backports"
	fi
done
log "host set-up complete"
