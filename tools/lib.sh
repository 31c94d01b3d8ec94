# SPDX-License-Identifier: GPL-2.0
# Common helpers for the vblk-adaptive bench scripts.  Source, do not run.

VBLK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything downloaded or built lives outside the checkout, so a fresh
# clone reuses it and "git clean" never throws away a 6-minute QEMU build.
VBLK_CACHE=${VBLK_CACHE:-/var/cache/vblk-adaptive}
# What is built from this checkout's sources into the cache (a module
# built under another name) goes under this key, the md5 of the checkout's
# path (tools/vblk/paths.py computes the same): checkouts running side by
# side, at the same commit or not, never build over each other's files.
VBLK_CHECKOUT=$(printf '%s' "$VBLK_ROOT" | md5sum | cut -c1-12)
HOST_PY=/usr/bin/python3

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Run a long command, printing a progress line every 30 s so CI logs and
# users see that it is alive, and the tail of its log if it fails.
run_logged() {
	local logfile=$1 what=$2; shift 2
	local start=$SECONDS pid rc
	log "$what (log: $logfile)"
	"$@" >"$logfile" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 5
		if (( (SECONDS - start) % 30 < 5 && SECONDS - start >= 30 )); then
			log "  ... $what: $((SECONDS - start)) s, $(tail -n1 "$logfile" | cut -c1-100)"
		fi
	done
	wait "$pid" && rc=0 || rc=$?
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$logfile" >&2
		die "$what failed (exit $rc), see $logfile"
	fi
	log "$what: done in $((SECONDS - start)) s"
}
