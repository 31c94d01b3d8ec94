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
	rm -rf "$FW.tmp/deb" "$FW.tmp/root"
	touch "$FW.tmp/.complete"
	mv "$FW.tmp" "$FW"
fi
# SeaBIOS and its VGA BIOSes: the qtests' default machine has a VGA card.
[ -f /usr/share/seabios/bios-256k.bin ] || die "SeaBIOS missing (install seabios)"
# NIC option ROMs (the machine's default NIC) from ipxe-qemu.
[ -d /usr/lib/ipxe/qemu ] || die "iPXE ROMs missing (install ipxe-qemu)"
for f in /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom; do
	ln -sfn "$f" "$FW/$(basename "$f")"
done
echo "$FW"
