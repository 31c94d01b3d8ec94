#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: get-later-kernel.sh KVER
#
# Download the packages of a Linux 6.12 kernel later than KVER (the one the
# Debian test image boots), for the debian-guest test's "kernel installed
# after the package" step: the newest linux-image-6.12.N+debNN-amd64-unsigned
# any configured suite carries, with its headers, their -common package and
# kbuild.  Nothing is installed on the host; the .deb files are kept under
# $VBLK_CACHE/later-kernel/<abi>/ and that directory is printed.
#
# There is no later kernel when the image's is the newest: that is an
# error (the step cannot run), never a skip.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: $0 KVER"
base=${1%-amd64}
top=$VBLK_CACHE/later-kernel
mkdir -p "$top"
exec 9>"$top/lock"
flock 9

# Resolving takes a few apt-cache calls: reuse a download younger than a day.
cached=$(find "$top" -mindepth 2 -maxdepth 2 -name .complete -mmin -1440 2>/dev/null |
	 sort -V | tail -n1)
if [ -n "$cached" ]; then
	dir=$(dirname "$cached")
	if [ "$(printf '%s\n%s\n' "$base" "${dir##*/}" | sort -V | tail -n1)" != "$base" ]; then
		echo "$dir"
		exit 0
	fi
fi

abi=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+[a-z0-9]+-amd64-unsigned$' |
      awk '{print $1}' | sed -e 's/^linux-image-//' -e 's/-amd64-unsigned$//' |
      sort -V | tail -n1)
[ -n "$abi" ] || die "no Linux 6.12 image in the apt sources (run tools/host-setup.sh)"
if [ "$(printf '%s\n%s\n' "$base" "$abi" | sort -V | tail -n1)" = "$base" ]; then
	die "no Linux 6.12 later than $base in the apt sources (newest: $abi)"
fi

dir=$top/$abi
if [ ! -f "$dir/.complete" ]; then
	rm -rf "$dir"
	mkdir -p "$dir"
	pkgs="linux-image-$abi-amd64-unsigned linux-headers-$abi-amd64
	      linux-headers-$abi-common linux-kbuild-$abi"
	# shellcheck disable=SC2086
	run_logged "$dir/download.log" "downloading Linux $abi (the later kernel)" \
		sh -c "cd '$dir' && apt-get download $(echo $pkgs)"
	[ "$(find "$dir" -maxdepth 1 -name '*.deb' | wc -l)" -eq 4 ] ||
		die "expected 4 packages in $dir"
	touch "$dir/.complete"
fi
find "$top" -mindepth 1 -maxdepth 1 -type d ! -name "$abi" -exec rm -rf {} +
touch "$dir/.complete"
echo "$dir"
