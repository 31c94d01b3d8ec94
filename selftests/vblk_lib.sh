# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the vblk_* tests of the adaptive virtio_blk.  Source after
# test_common.sh.

VBLK_PATHS="bio request"

# vblk_ours: the adaptive driver (not the in-tree one) is loaded.
vblk_ours() {
	[ -e /sys/module/virtio_blk/parameters/io_path ]
}

# vblk_require WHAT...: the test's prerequisites, each one of
#   ours    the adaptive driver is loaded
#   udev    udevd runs in the guest
#   /PATH   the file exists
#   NAME    a command
# A missing one fails the test and names it: a test that cannot run is
# not a pass, and make check counts a skip as a failure anyway.
vblk_require() {
	local w
	for w in "$@"; do
		case $w in
		ours) vblk_ours || fail "needs the adaptive driver, not ${VBLK_DRIVER:-the in-tree one}" ;;
		udev) [ "$VBLK_UDEV" = 1 ] || fail "needs udevd in the guest" ;;
		/*) [ -e "$w" ] || fail "needs $w" ;;
		*) command -v "$w" >/dev/null 2>&1 || fail "needs the command $w" ;;
		esac
	done
}

# vblk_debugfs: debugfs is mounted (mount it if not), or fail the test.
vblk_debugfs() {
	grep -qw debugfs /proc/mounts || mount -t debugfs none /sys/kernel/debug ||
		fail "cannot mount debugfs"
}

# vblk_sys DEV: sysfs directory of /dev/vdX.
vblk_sys() {
	echo "/sys/block/${1#/dev/}"
}

# vblk_data_disk: /dev node of the first disk that keeps data (not null)
# and whose path no udev rule pins (not role=pinned, see vblk_udev.sh).
vblk_data_disk() {
	local info name rest
	for info in $VBLK_DISK_INFO; do
		name=${info%%:*}
		rest=${info#*:}
		[ "${rest%%:*}" = null ] && continue
		vblk_role_disks pinned | grep -qx "$name" && continue
		vblk_dev "$name" && return 0
	done
	return 1
}

# vblk_hidden SYS: the hidden blk-mq disk behind a bio-capable vdX (the
# other disk of the same virtio device).  Fails for a plain disk, which is
# itself the blk-mq disk, as under the in-tree driver.
vblk_hidden() {
	local d
	for d in "$1"/device/block/*; do
		[ "${d##*/}" = "${1##*/}" ] && continue
		echo "${d##*/}"
		return 0
	done
	return 1
}

# vblk_paths SYS: the paths the disk switches between at run time: both
# on a bio-capable disk, the request path alone on a plain one.
vblk_paths() {
	if vblk_hidden "$1" >/dev/null; then
		echo "$VBLK_PATHS"
	else
		echo request
	fi
}

# vblk_writable: /sys/block/vdX of every writable disk, in name order.
vblk_writable() {
	local s
	for s in /sys/block/vd*; do
		[ -e "$s/ro" ] && [ "$(cat "$s/ro")" = 0 ] && echo "$s"
	done
}

# vblk_capable_writable: /sys/block/vdX of the first writable
# bio-capable disk; fails when there is none.
vblk_capable_writable() {
	local s
	for s in $(vblk_writable); do
		vblk_hidden "$s" >/dev/null && { echo "$s"; return 0; }
	done
	return 1
}

# vblk_is_null SYS: the disk is a null-co one (it reads zeroes, so data
# checks can only be pretended there: fio --verify=null).
vblk_is_null() {
	[ "$(vblk_class "$(cat "$1/serial" 2>/dev/null)")" = null ]
}

# vblk_test_paths SYS: the paths a test runs the disk on: those of
# vblk_paths under this driver, "current" under the in-tree one.
vblk_test_paths() {
	if vblk_ours; then vblk_paths "$1"; else echo current; fi
}

# vblk_inflight_files SYS: the inflight files of the disk and, on a
# bio-capable disk, of its hidden blk-mq disk.
vblk_inflight_files() {
	local h
	echo "$1/inflight"
	h=$(vblk_hidden "$1") && echo "/sys/block/$h/inflight"
}

# vblk_idle FILE...: nothing in flight in any of these inflight files
# (read by the shell itself, so that polling it starts no process).
vblk_idle() {
	local f r w
	for f in "$@"; do
		read -r r w <"$f" || return 1
		[ "$r" = 0 ] && [ "$w" = 0 ] || return 1
	done
}

# vblk_busy FILE...: some of these inflight files count I/O in flight.
vblk_busy() {
	! vblk_idle "$@"
}

# vblk_keep_path SYS: remember the disk's path and why, so that the test
# leaves it as it found it (vblk_put_back_path): the next test in the
# guest may check what the driver chose by itself.
vblk_keep_path() {
	_vblk_kept_path=
	_vblk_kept_reason=
	vblk_ours || return 0
	_vblk_kept_path=$(cat "$1/io_path")
	_vblk_kept_reason=$(cat "$1/io_path_reason")
}

# vblk_auto_reason REASON: REASON is an io_path_reason the auto policy
# gives (the medium's field, or no VIRTIO_BLK_F_BIO), not a forced path.
vblk_auto_reason() {
	case $1 in
	"read_latency_hint "*|"rotation_rate "*|"device does not offer VIRTIO_BLK_F_BIO") return 0 ;;
	esac
	return 1
}

# vblk_put_back_path SYS: the path vblk_keep_path saw, chosen the same way
# where the driver allows: the automatic choice again (io_path "auto")
# when that was it, else that path.  Fails the test when it cannot.
vblk_put_back_path() {
	[ -n "$_vblk_kept_path" ] || return 0
	if vblk_auto_reason "$_vblk_kept_reason"; then
		echo auto >"$1/io_path"
	else
		echo "$_vblk_kept_path" >"$1/io_path"
	fi
	[ "$(cat "$1/io_path")" = "$_vblk_kept_path" ] ||
		fail "${1##*/}: cannot put the path back to $_vblk_kept_path ($_vblk_kept_reason)"
}

# vblk_each_path SETUP RUN: the loop of a test that runs on every
# writable disk and on every path the disk runs (vblk_test_paths).  Per
# disk it sets sys (/sys/block/vdX), dev (/dev/vdX), vd (vdX), inflight
# (vblk_inflight_files), null (1 on a null-co disk, which reads zeroes),
# verify (fio's --verify=null there, else empty) and how (what the data
# checks were), and calls the function SETUP; per path it switches the
# disk to it, sets p and tag ("vdX PATH"), calls the function RUN, then
# waits (30 s at most) until nothing is in flight.  The disk's path is
# put back afterwards (vblk_put_back_path).  Fails the test when there is no writable disk.
vblk_each_path() {
	local _vblk_setup=$1 _vblk_run=$2 _vblk_n=0
	for sys in $(vblk_writable); do
		dev=/dev/${sys##*/}
		vd=${sys##*/}
		inflight=$(vblk_inflight_files "$sys")
		null=0
		verify=
		how=verified
		if vblk_is_null "$sys"; then
			null=1
			verify=--verify=null
			how="unverified (null-co)"
		fi
		vblk_keep_path "$sys"
		$_vblk_setup
		for p in $(vblk_test_paths "$sys"); do
			tag="$vd $p"
			[ "$p" = current ] || vblk_set_path "$sys" "$p" ||
				fail "$tag: cannot switch the path"
			$_vblk_run
			vblk_wait 30 "$tag: nothing in flight" vblk_idle $inflight
			_vblk_n=$((_vblk_n + 1))
		done
		vblk_put_back_path "$sys"
	done
	[ $_vblk_n -gt 0 ] || fail "no writable disk"
}

# vblk_until SECONDS COMMAND...: run COMMAND every 0.1 s until it
# succeeds (status 0), or until SECONDS have passed (status 1).
vblk_until() {
	local secs=$1 n=0
	shift
	until "$@"; do
		n=$((n + 1))
		[ $n -gt $((secs * 10)) ] && return 1
		sleep 0.1
	done
	return 0
}

# vblk_wait SECONDS WHAT COMMAND...: vblk_until, failing the test after
# SECONDS with the name of WHAT was waited for.
vblk_wait() {
	local secs=$1 what=$2
	shift 2
	vblk_until "$secs" "$@" || fail "waited $secs s in vain for: $what"
}

# vblk_wait_idle SECONDS WHAT FILE...: vblk_wait for vblk_idle FILE...
# (inflight files); the failure shows what each one still counts.
vblk_wait_idle() {
	local secs=$1 what=$2 f s=
	shift 2
	vblk_until "$secs" vblk_idle "$@" && return 0
	for f in "$@"; do
		s="$s $f: $(echo $(cat "$f"))"
	done
	fail "$what: I/O still in flight after $secs s:$s"
}

# vblk_has_disk NAME: a disk of serial NAME is there (vblk_dev finds it).
vblk_has_disk() {
	vblk_dev "$1" >/dev/null
}

# vblk_qstat QUEUES COUNTER [PREFIX]: COUNTER of the driver's debugfs
# QUEUES file (/sys/kernel/debug/virtio_blk/vdX/queues), summed over the
# queues whose name starts with PREFIX (all by default).
vblk_qstat() {
	awk -v f="$2" -v p="$3" 'p == "" || index($1, p) == 1 {
			for (i = 2; i < NF; i += 2) if ($i == f) s += $(i + 1)
		}
		END { print s + 0 }' "$1"
}

# vblk_le32 N: printf escapes of N as 4 little-endian bytes.
vblk_le32() {
	local n=$1 i=0 s=
	while [ $i -lt 4 ]; do
		s="$s\\$(printf %03o $((n & 255)))"
		n=$((n >> 8))
		i=$((i + 1))
	done
	echo "$s"
}

# vblk_write_mbr DEV: an MBR partition table on DEV with one primary Linux
# partition from 1 MiB to the end (the kernel reads it on the next
# re-read: blockdev --rereadpt, or udev after the writer closes DEV).
vblk_write_mbr() {
	local size
	size=$(cat "/sys/block/${1#/dev/}/size") || return 1
	{
		dd if=/dev/zero bs=446 count=1 2>/dev/null
		printf "\\000\\000\\002\\000\\203\\377\\377\\377$(vblk_le32 2048)$(vblk_le32 $((size - 2048)))"
		dd if=/dev/zero bs=48 count=1 2>/dev/null
		printf '\125\252'
	} >/tmp/vblk.mbr
	[ "$(wc -c </tmp/vblk.mbr)" = 512 ] || return 1
	dd if=/tmp/vblk.mbr of="$1" bs=512 count=1 oflag=direct 2>/dev/null
}

# vblk_exited PID: the process is gone (for vblk_wait).
vblk_exited() {
	! kill -0 "$1" 2>/dev/null
}

# vblk_host_bit SYS: 1 if the device offered (and so negotiated)
# VIRTIO_BLK_F_BIO, else 0.
vblk_host_bit() {
	cut -c$((${VIRTIO_BLK_F_BIO:-20} + 1)) "$1/device/features"
}

# vblk_set_path SYS PATH: switch a disk's I/O path and check it took.
vblk_set_path() {
	echo "$2" >"$1/io_path" || return 1
	[ "$(cat "$1/io_path")" = "$2" ]
}

# vblk_modparam NAME: value given to the module at load, if any.
vblk_modparam() {
	local p
	for p in $VBLK_MODPARAMS; do
		[ "${p%%=*}" = "$1" ] && { echo "${p#*=}"; return 0; }
	done
	return 1
}

# vblk_settle: let udev finish what it is doing (probing a disk that just
# appeared, changed path or was closed after writing), if it runs at all.
vblk_settle() {
	command -v udevadm >/dev/null && udevadm settle --timeout=10
}

# vblk_udev_report: what udev is doing, for a test that waited for its
# queue in vain: the tasks the kernel sees blocked (SysRq w), whether
# events are queued, what each disk has in flight (with the driver's
# resets and queues where debugfs has them), every process but the
# kernel's with its state and where it sleeps (with its stack if it is
# blocked, or udev's and not waiting for work), and whether the queue
# empties within another 60 s (slow, not stuck).
vblk_udev_report() {
	local p pid cmd state
	echo w >/proc/sysrq-trigger
	sleep 1
	dmesg | sed -n '/sysrq: Show Blocked State/,$p' | tail -n 40 |
		sed 's/^/# kernel: /'
	[ -e /run/udev/queue ] && echo "# udev: events queued (/run/udev/queue)"
	for p in /sys/block/vd*; do
		echo "# ${p##*/}: in flight $(echo $(cat "$p/inflight")), path $(cat "$p/io_path" 2>/dev/null)"
		p=/sys/kernel/debug/virtio_blk/${p##*/}
		[ -d "$p" ] && cat "$p/resets" "$p/queues" | sed 's/^/#     /'
	done
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
		[ -n "$cmd" ] || continue
		pid=${p#/proc/}
		state=$(vblk_proc_state "$pid")
		echo "# process $pid ($cmd): state $state, ppid $(sed -n 's/^PPid:[[:space:]]*//p' "$p/status" 2>/dev/null), in $(cat "$p/wchan" 2>/dev/null)"
		[ "$state" = D ] || { [ -z "${cmd##*udev*}" ] &&
			[ "$(cat "$p/wchan" 2>/dev/null)" != do_epoll_wait ]; } &&
			sed 's/^/#     /' "$p/stack" 2>/dev/null
	done
	if udevadm settle --timeout=60; then
		echo "# udev: the queue emptied within another 60 s"
	else
		echo "# udev: the queue still had events after another 60 s"
	fi
}

# vblk_udev_settle SECONDS WHAT: udev's queue empties within SECONDS, or
# the test fails naming WHAT, after vblk_udev_report.
vblk_udev_settle() {
	udevadm settle --timeout="$1" && return 0
	vblk_udev_report
	fail "$2: udev did not settle in $1 s"
}

# Holding udev's events.  udevd handles an event of a disk (one comes
# each time a writer closes it) with a probe that reads the disk, so a
# test whose I/O must be its own holds them.  It stops udevd's manager
# process with SIGSTOP, not with udevadm control --stop-exec-queue:
# udevd ignores a control message that reaches a connection before it
# has enabled the sender's credentials on it (its debug log says
# "Invalid sender uid 65534, ignoring message"), and udevadm exits 0 all
# the same; on a busy host a --start-exec-queue was lost like that and
# udev's queue stayed stopped.  A signal is not lost.  A stopped manager
# also leaves a disk alone when a writer closes it (it re-reads the
# partition table then, whether its queue runs or not).

# vblk_proc_state PID: the one-letter state of process PID (R, S, D, T,
# ...), from the State: line of /proc/PID/status; fails when PID is gone.
# Not /proc/PID/stat's third field: the name before it, in parentheses,
# may itself hold a space.
vblk_proc_state() {
	local key state
	while read -r key state _; do
		[ "$key" = State: ] && { echo "$state"; return 0; }
	done 2>/dev/null <"/proc/$1/status"
	return 1
}

# vblk_udevd: the pid of udevd's manager process.
vblk_udevd() {
	local p comm
	for p in /proc/[0-9]*; do
		read -r comm <"$p/comm" 2>/dev/null || continue
		[ "$comm" = systemd-udevd ] && { echo "${p#/proc/}"; return 0; }
	done
	return 1
}

# vblk_udev_stopped PID: udevd's manager PID has stopped, and none of its
# workers handles an event: each waits for one (in epoll_wait) and runs
# no program of a rule.
vblk_udev_stopped() {
	[ "$(vblk_proc_state "$1")" = T ] || return 1
	awk -v m="$1" '
		FNR == 1 { split(FILENAME, f, "/"); pid = f[3] }
		/^PPid:/ { pp[pid] = $2 }
		END {
			for (p in pp)
				if (pp[p] == m)
					w[p] = 1
			for (p in pp)
				if (pp[p] in w)
					exit 1
			for (p in w) {
				c = ""
				getline c <("/proc/" p "/wchan")
				close("/proc/" p "/wchan")
				if (c != "do_epoll_wait")
					exit 1
			}
		}' /proc/[0-9]*/status 2>/dev/null
}

# vblk_udev_hold SECONDS WHAT: udev's queue empties (vblk_udev_settle),
# then its manager stops and its workers finish, each within SECONDS:
# from then on, until vblk_udev_release, nothing of udev's touches a
# disk.  Without udev, nothing to do.
vblk_udev_hold() {
	local pid
	[ "$VBLK_UDEV" = 1 ] || return 0
	vblk_udev_settle "$1" "$2"
	pid=$(vblk_udevd) || fail "$2: udevd does not run"
	kill -STOP "$pid" || fail "$2: cannot stop udevd ($pid)"
	vblk_wait "$1" "$2: udevd to stop and its workers to finish" \
		vblk_udev_stopped "$pid"
}

# vblk_udev_release: udevd's manager goes on, and handles what came
# meanwhile.  Harmless when it was not held.
vblk_udev_release() {
	local pid
	[ "$VBLK_UDEV" = 1 ] || return 0
	pid=$(vblk_udevd) && kill -CONT "$pid"
}

# vblk_unload: rmmod virtio_blk; udev may still be probing a disk that
# just appeared, so settle and retry briefly.
vblk_unload() {
	local n=0
	vblk_settle
	while ! rmmod virtio_blk 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt 50 ] && return 1
		sleep 0.1
	done
}

# vblk_fio_verified SECONDS NAME DEV FIO-ARGS...: a 4k write job on DEV
# (random unless FIO-ARGS say otherwise) that reads back and checks
# every block (crc32c).  Fails the test when fio has not finished after
# SECONDS (killed: an I/O that never completes), fails, or reports an
# error.  fio's report stays in /tmp/vblk_fio.out (a file, not a pipe: a
# killed fio stuck in the kernel must not hold the test's output).
vblk_fio_verified() {
	local secs=$1 name=$2 dev=$3
	shift 3
	timeout -s KILL "$secs" fio --output=/tmp/vblk_fio.out --name="$name" \
		--filename="$dev" --direct=1 --rw=randwrite --bs=4k \
		--verify=crc32c --verify_fatal=1 "$@" >/tmp/vblk_fio.err 2>&1
	case $? in
	0) ;;
	137) fail "$name: fio did not finish in $secs s (an I/O never completed?)" ;;
	*) cat /tmp/vblk_fio.out /tmp/vblk_fio.err; fail "$name: fio failed" ;;
	esac
	grep -q "err= 0" /tmp/vblk_fio.out && ! grep -q "err= *[1-9]" /tmp/vblk_fio.out ||
		{ cat /tmp/vblk_fio.out; fail "$name: fio reported errors"; }
}

# vblk_now: whole seconds since boot.
vblk_now() {
	cut -d. -f1 /proc/uptime
}

# vblk_fio_until PID FLAG SECS WHAT NAME DEV FIO_ARGS...: vblk_fio_verified
# NAME DEV FIO_ARGS again and again, at least once, until the background
# job PID has created FLAG (it does WHAT while I/O runs), then reaps PID.
# Fails when PID ends without FLAG, or when SECS pass in all (also the
# bound of each fio run).  The number of fio runs is in $vblk_fio_runs.
vblk_fio_until() {
	local pid=$1 flag=$2 secs=$3 what=$4 t0
	shift 4
	vblk_fio_runs=0
	t0=$(vblk_now)
	while [ ! -e "$flag" ] || [ $vblk_fio_runs = 0 ]; do
		kill -0 "$pid" 2>/dev/null || [ -e "$flag" ] ||
			fail "$what: failed after $vblk_fio_runs fio runs"
		[ $(($(vblk_now) - t0)) -le "$secs" ] ||
			fail "$what: not done in $secs s ($vblk_fio_runs fio runs)"
		vblk_fio_verified "$secs" "$@"
		vblk_fio_runs=$((vblk_fio_runs + 1))
	done
	wait "$pid" || fail "$what: failed"
}
