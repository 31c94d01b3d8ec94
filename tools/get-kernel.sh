#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetch the guest kernel: the newest Linux 6.12 image in bookworm-backports,
# its headers (for building the module), and from linux-source-6.12 only
# the files the checks need (checkpatch and the kselftest headers).
# Everything is unpacked with dpkg -x under $VBLK_CACHE/kernel/<version>:
# nothing is installed on the host.
#
# Writes $VBLK_CACHE/kernel/env (KVER KDIR VMLINUZ MODDIR KSRC) and prints
# its path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KCACHE=$VBLK_CACHE/kernel
SUITE=${KERNEL_SUITE:-bookworm-backports}
mkdir -p "$KCACHE"
exec 9>"$KCACHE/lock"
flock 9

# Newest linux-image-6.12.*-amd64-unsigned that $SUITE carries.
resolve_version() {
	local p
	for p in $(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+[a-z0-9]+-amd64-unsigned$' |
		   awk '{print $1}' | sort -rV); do
		# (no grep -q on a pipe: with pipefail its early exit is a failure)
		if [[ $(apt-cache madison "$p") == *" $SUITE/"* ]]; then
			p=${p#linux-image-}
			echo "${p%-amd64-unsigned}"
			return 0
		fi
	done
	return 1
}

# Resolving takes a few apt-cache calls: do it at most once a day.
if [ -n "$(find "$KCACHE/env" -mmin -1440 2>/dev/null)" ] &&
   . "$KCACHE/env" && [ -f "$KCACHE/${KVER%-amd64}/.complete" ]; then
	echo "$KCACHE/env"
	exit 0
fi
abi=$(resolve_version) || die "no Linux 6.12 image in $SUITE (run tools/host-setup.sh)"
KVER=$abi-amd64
dir=$KCACHE/$abi
if [ ! -f "$dir/.complete" ]; then
	rm -rf "$dir"
	mkdir -p "$dir/deb" "$dir/root" "$dir/src"
	pkgs="linux-image-$abi-amd64-unsigned linux-headers-$abi-amd64
	      linux-headers-$abi-common linux-kbuild-$abi"
	# shellcheck disable=SC2086
	run_logged "$dir/download.log" "downloading Linux $abi" \
		sh -c "cd '$dir/deb' && apt-get download $(echo $pkgs)"
	for d in "$dir"/deb/*.deb; do
		dpkg -x "$d" "$dir/root"
	done
	# The headers package links to -common and kbuild with absolute
	# paths; point those links into our unpacked root instead.
	find "$dir/root" -type l -lname '/usr/*' | while read -r l; do
		ln -sfn "$dir/root$(readlink "$l")" "$l"
	done
	sed -i "s|^include /usr/src/|include $dir/root/usr/src/|" \
		"$dir/root/usr/src/linux-headers-$abi-amd64/Makefile"
	# The image package ships no modules.dep: make one for modinfo/modprobe.
	depmod -b "$dir/root" "$abi-amd64"
	# linux-source-6.12 of the same version when the suite has it,
	# else the newest one: only scripts and selftest headers are taken.
	srcver=$(apt-cache madison linux-source-6.12 | awk -v s="$SUITE" '$0 ~ " "s"/" {print $3; exit}')
	run_logged "$dir/download-src.log" "downloading linux-source-6.12 ${srcver:-(newest)}" \
		sh -c "cd '$dir/deb' && apt-get download linux-source-6.12${srcver:+=$srcver}"
	log "extracting checkpatch and kselftest headers from linux-source"
	dpkg --fsys-tarfile "$dir"/deb/linux-source-6.12_*.deb |
		tar -xO --wildcards '*/linux-source-6.12.tar.xz' |
		tar -xJ -C "$dir/src" --strip-components=1 --wildcards \
			'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
			'*/scripts/const_structs.checkpatch' \
			'*/tools/testing/selftests/kselftest.h' \
			'*/tools/testing/selftests/kselftest_harness.h' \
			'*/tools/testing/selftests/kselftest/*'
	rm -f "$dir"/deb/linux-source-6.12_*.deb
	touch "$dir/.complete"
fi

cat >"$KCACHE/env.tmp" <<EOT
KVER=$KVER
KDIR=$dir/root/usr/src/linux-headers-$KVER
VMLINUZ=$dir/root/boot/vmlinuz-$KVER
MODDIR=$dir/root/lib/modules/$KVER
KSRC=$dir/src
EOT
mv "$KCACHE/env.tmp" "$KCACHE/env"
echo "$KCACHE/env"
