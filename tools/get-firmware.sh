#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Firmware the guest needs at run time, gathered in one -L directory:
# SeaBIOS from Debian's seabios package and the option ROMs QEMU loads for
# -kernel (linuxboot_dma.bin, kvmvapic.bin) from bookworm-backports'
# qemu-system-data, unpacked with dpkg -x (never installed).
# Prints the directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FW=$VBLK_CACHE/firmware
if [ ! -f "$FW/.complete" ]; then
	rm -rf "$FW" "$FW.tmp"
	mkdir -p "$FW.tmp/deb"
	run_logged "$FW.tmp/download.log" "downloading qemu-system-data (backports)" \
		sh -c "cd '$FW.tmp/deb' && apt-get download qemu-system-data/bookworm-backports"
	dpkg -x "$FW.tmp"/deb/qemu-system-data_*.deb "$FW.tmp/root"
	for f in linuxboot_dma.bin linuxboot.bin kvmvapic.bin pvh.bin; do
		cp "$FW.tmp/root/usr/share/qemu/$f" "$FW.tmp/"
	done
	for f in bios-256k.bin bios.bin; do
		[ -f "/usr/share/seabios/$f" ] || die "/usr/share/seabios/$f missing (install seabios)"
		ln -s "/usr/share/seabios/$f" "$FW.tmp/$f"
	done
	rm -rf "$FW.tmp/deb" "$FW.tmp/root"
	touch "$FW.tmp/.complete"
	mv "$FW.tmp" "$FW"
fi
echo "$FW"
