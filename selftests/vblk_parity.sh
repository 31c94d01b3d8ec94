#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Parity with the in-tree driver: a disk whose device does not offer
# VIRTIO_BLK_F_BIO (dev.bio=off) is on the request path at probe,
# and must then look and behave exactly like under the stock 6.12
# virtio_blk.  Needs a guest booted with "--driver both" (the stock
# virtio_blk and ours under another name, $VBLK_MODULE).  Every virtio
# disk is bound to the stock driver, facts are collected for each disk;
# then every disk is bound to ours and the same facts are collected;
# any difference fails and is listed ("- stock", "+ ours"), but for the
# facts ADDED below (queue/io_timeout: ours has a timeout handler).
#
# Facts, one "name=value" line each (the disk's major, which each driver
# registers for itself, is replaced by MAJ and its MAJ:MIN by DISK):
#   disk.*   name, minor, the disks the virtio device has, driver-side
#            facts outside sysfs values (debugfs entries)
#   sys.*    every entry under /sys/block/vdX/ (queue/ included, with
#            iosched/), its kind and the value of each readable file
#   sched.*  writing each scheduler to queue/scheduler, what it returns,
#            reads back and whether a direct read then works
#   tune.*   nr_requests 64, wbt_lat_usec 1000, rq_affinity 2: write,
#            read back, restore
#   cg.*     cgroup v2 io controller: which io.* files exist; io.max,
#            io.weight, io.latency, io.cost.qos on the disk (a file the
#            kernel lacks is recorded as absent: Debian's 6.12 has no
#            io.latency); the rows of a child's io.stat after direct I/O
#            from it (DISK, "(unknown)" for a disk without a name, i.e.
#            a hidden one, "other" for any other device)
#   part.*   a partition made with an MBR: its sysfs entries, whether its
#            stat counters move with I/O to it
#   stat.*   whether the disk's merge and flush counters move under
#            buffered writes + fsync, and the stat layout
#   trace.*  which of block_bio_queue, block_rq_issue, block_rq_complete
#            a direct read of the disk emits for its MAJ,MIN
# Polled I/O needs poll queues, which the stock driver gets only from a
# module parameter vmrun does not give it in "both": queue/io_poll is
# compared (sys.*), polled I/O is not exercised.
#
# VBLK_PARITY_SELF=1 binds the stock driver both times: the self-check
# that the facts are reproducible, i.e. that the test compares no noise.
#
# A disk without the hint is what the in-tree driver makes of it: the
# stock virtio_blk and ours (built as vblk_bench) bind it in turn, and
# every user-visible fact must match; one queue gives mq-deadline.
# vmtest guest parity --driver both
# vmtest disk p1 ram size=64M dev.bio=off
# vmtest disk p2 ram size=64M dev.bio=off dev.num-queues=1
. ./test_common.sh
. ./vblk_lib.sh

VIRTIO_BLK_DEVICE_ID=0x0002
STOCK=virtio_blk
OURS=$VBLK_MODULE
OUT=/tmp/vblk_parity
CG=/sys/fs/cgroup
TR=/sys/kernel/tracing
DBG=/sys/kernel/debug/block

# Values not compared (the entry's existence still is):
# - stat, inflight: I/O counters, moved by udev's probes and by this
#   test; stat.* and part.* compare what must move;
# - diskseq: a global sequence number, new for every disk ever added;
# - power/runtime_active_time, power/runtime_suspended_time: time spent
#   in runtime-PM states since the disk was added.
# uevent is compared without its DISKSEQ line, for the same reason.
# Not compared at all: io_path and io_path_reason, our driver's own
# attributes (outside queue/, allowed by the rule).
NOVALUE="stat inflight diskseq power/runtime_active_time power/runtime_suspended_time"
OURS_ONLY="io_path io_path_reason"
# Facts our driver adds on purpose, exactly as listed: blk-mq shows
# queue/io_timeout only for a driver with a timeout handler, which the
# in-tree one does not have (30000 ms, blk-mq's default).  Anything else
# about them (another value, missing under stock but with a value of its
# own) is still a difference.
ADDED="sys.queue/io_timeout=30000"

if [ "${VBLK_PARITY_SELF:-0}" = 1 ]; then
	CAND=$STOCK
	CAND_LABEL=stock2
else
	CAND=$OURS
	CAND_LABEL=ours
fi

# -- helpers -------------------------------------------------------------

# norm: in the facts on stdin, MAJ:MIN and MAJ,MIN of the disk become
# DISK, any other number of its major MAJ (values are one line each,
# lines of a file joined by a literal \n).
norm() {
	sed -E -e "s/(^|[^0-9])${maj}[:,]${min}([^0-9]|\$)/\\1DISK\\2/g" \
		-e "s/(^|[^0-9])${maj}([:,])/\\1MAJ\\2/g" \
		-e "s/MAJOR=${maj}(\\\\|\$)/MAJOR=MAJ\\1/g"
}

# flat: the lines of stdin as one, joined by a literal \n.
flat() {
	awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'
}

# fact NAME VALUE: record one fact of the current disk (raw: collect()
# normalises the file).  VALUE must be one line.
fact() {
	case $2 in *"
"*) fail "test bug: fact $1 has more than one line" ;; esac
	printf '%s=%s\n' "$1" "$2" >>"$raw"
}

# rd FILE: the file's value as one line, or "<error: REASON>".
rd() {
	local v
	[ -e "$1" ] || { echo "<no such file>"; return; }
	if v=$(cat "$1" 2>/tmp/vblk_parity.err); then
		case $v in
		*"
"*) printf '%s\n' "$v" | flat ;;
		*) printf '%s\n' "$v" ;;
		esac
	else
		v=$(cat /tmp/vblk_parity.err)
		echo "<error: ${v##*: }>"
	fi
}

# wr FILE VALUE: write VALUE to FILE; prints "ok" or "<error: REASON>".
# (echo, not printf: busybox's printf builtin does not say why a write
# failed.)
wr() {
	local err
	[ -e "$1" ] || { echo "<no such file>"; return; }
	if err=$( { echo "$2" >"$1"; } 2>&1); then
		echo ok
	else
		echo "<error: ${err##*: }>"
	fi
}

# moved BEFORE AFTER: "moved" if the counter went up, else "zero".
moved() {
	[ "$2" -gt "$1" ] && echo moved || echo zero
}

# ok CMD...: "ok" if the command succeeds, else "failed"; output dropped.
ok() {
	"$@" >/dev/null 2>&1 && echo ok || echo failed
}

virtio_blk_devs() {
	local d
	for d in /sys/bus/virtio/devices/*; do
		[ "$(cat "$d/device")" = $VIRTIO_BLK_DEVICE_ID ] && echo "${d##*/}"
	done
}

disk_ready() {	# NAME: its disk is there with a /dev node
	local dev
	dev=$(vblk_dev "$1") && [ -b "$dev" ]
}

# bind_all DRIVER: unbind every virtio disk, bind them all to DRIVER (all
# at once, in bus order, so each driver numbers them the same way and
# never meets a name the other one still holds), wait for every disk.
bind_all() {
	local d n
	for d in $(virtio_blk_devs); do
		[ -e "/sys/bus/virtio/devices/$d/driver" ] || continue
		echo "$d" >"/sys/bus/virtio/devices/$d/driver/unbind" ||
			fail "unbinding $d failed"
	done
	for d in $(virtio_blk_devs); do
		echo "$d" >"/sys/bus/virtio/drivers/$1/bind" ||
			fail "binding $d to $1 failed"
		[ "$(basename "$(readlink "/sys/bus/virtio/devices/$d/driver")")" = "$1" ] ||
			fail "$d is not bound to $1 after binding it"
	done
	for n in $VBLK_DISKS; do
		vblk_wait 20 "disk $n after binding to $1" disk_ready "$n"
	done
	vblk_settle
}

# restore: leave the disks as the guest booted them (stock driver).
restore() {
	local d
	for d in $(virtio_blk_devs); do
		[ -e "/sys/bus/virtio/devices/$d/driver" ] &&
			echo "$d" >"/sys/bus/virtio/devices/$d/driver/unbind"
		echo "$d" >"/sys/bus/virtio/drivers/$STOCK/bind"
	done 2>/dev/null
}

# -- facts ---------------------------------------------------------------

# walk PREFIX DIR: every entry under DIR (symlinks not followed) as
# PREFIX.RELPATH=dir|link|VALUE.  One awk reads all the files (a fork
# per file is slow under TCG); rd says why the few that fail failed.
walk() {
	local prefix=$1 dir=$2 k v
	{
		find "$dir/" -mindepth 1 -type d | sed 's/$/ dir/'
		find "$dir/" -mindepth 1 -type l | sed 's/$/ link/'
		find "$dir/" -mindepth 1 -type f | sed 's/$/ file/'
	} | awk -v dir="$dir/" -v prefix="$prefix" -v skip=" $OURS_ONLY " \
		-v novalue=" $NOVALUE " '{
		kind = $NF
		p = substr($0, 1, length($0) - length(kind) - 1)
		rel = substr(p, length(dir) + 1)
		if (index(skip, " " rel " "))
			next
		if (kind != "file") {
			print prefix "." rel "=" kind
			next
		}
		if (index(novalue, " " rel " ")) {
			print prefix "." rel "=(not compared)"
			next
		}
		base = rel
		sub(/.*\//, "", base)
		v = ""
		n = 0
		while ((r = (getline line < p)) > 0) {
			if (base == "uevent" && line ~ /^DISKSEQ=/)
				continue
			v = (n++ ? v "\\n" : "") line
		}
		close(p)
		if (r < 0)
			print "ERROR " p " " prefix "." rel
		else
			print prefix "." rel "=" v
	}' | sort >/tmp/vblk_parity.walk
	grep -v '^ERROR ' /tmp/vblk_parity.walk >>"$raw"
	grep '^ERROR ' /tmp/vblk_parity.walk | while read -r _ p k; do
		fact "$k" "$(rd "$p")"
	done
}

facts_disk() {
	local d
	fact disk.name "$blk"
	fact disk.minor "$min"
	# The block devices the virtio device has: only its disk, or more.
	d=$(ls "$sys/device/block" | sed "s/^$blk\$/SELF/" | sort | tr '\n' ' ')
	fact disk.device_disks "$d"
	fact disk.debugfs "$(ls "$DBG/$blk" 2>&1 | sort | tr '\n' ' ')"
	walk sys "$sys"
}

direct_read() {	# 64 KiB, direct
	dd if="$dev" of=/dev/null bs=4k count=16 skip="${1:-0}" iflag=direct
}

active_sched() {
	sed -n 's/.*\[\(.*\)\].*/\1/p' "$q/scheduler" 2>/dev/null
}

iosched() {	# the files of queue/iosched/, if there is one
	if [ -d "$q/iosched" ]; then
		ls "$q/iosched" | sort | tr '\n' ' '
	else
		echo "(no iosched)"
	fi
}

facts_sched() {
	local def s all
	def=$(active_sched)
	fact sched.default "$def"
	# What the disk lists, and the kernel's schedulers whether listed or
	# not (kyber and bfq are modules the guest does not have: writing
	# them fails the same way for any blk-mq disk).
	all=$( { cat "$q/scheduler" 2>/dev/null | tr -d '[]' | tr ' ' '\n'
		 printf '%s\n' none mq-deadline kyber bfq; } | grep . | sort -u)
	for s in $all; do
		fact "sched.$s.write" "$(wr "$q/scheduler" "$s")"
		fact "sched.$s.active" "$(active_sched)"
		fact "sched.$s.iosched" "$(iosched)"
		fact "sched.$s.read" "$(ok direct_read)"
	done
	if [ -n "$def" ]; then
		fact sched.restore "$(wr "$q/scheduler" "$def")"
	else
		fact sched.restore "nothing to restore"
	fi
	fact sched.restored "$(active_sched)"
}

facts_tune() {
	local spec a v old
	for spec in nr_requests:64 wbt_lat_usec:1000 rq_affinity:2; do
		a=${spec%%:*}
		v=${spec#*:}
		old=$(rd "$q/$a")
		fact "tune.$a.write" "$(wr "$q/$a" "$v")"
		fact "tune.$a.after" "$(rd "$q/$a")"
		case $old in
		"<"*) fact "tune.$a.restore" "nothing to restore: $old" ;;
		*)
			fact "tune.$a.restore" "$(wr "$q/$a" "$old")"
			fact "tune.$a.restored" "$([ "$(rd "$q/$a")" = "$old" ] && echo yes || echo no)"
		esac
	done
}

iofiles() {	# DIR: the io.* files of a cgroup
	ls "$1" | grep '^io\.' | sort | tr '\n' ' '
}

facts_cgroup() {
	local child=$CG/vblk-parity-$label-$blk n s
	mkdir "$child" || fail "mkdir $child failed"
	fact cg.root.files "$(iofiles $CG)"
	fact cg.child.files "$(iofiles "$child")"
	# io.cost.qos first: io.weight per device needs iocost enabled on it.
	for s in "root io.cost.qos $CG/io.cost.qos enable=1" \
		 "child io.max $child/io.max rbps=1048576" \
		 "child io.weight $child/io.weight 200" \
		 "child io.latency $child/io.latency target=10000"; do
		set -- $s
		if [ -e "$3" ]; then
			fact "cg.$2.write" "$(wr "$3" "$maj:$min $4")"
			fact "cg.$2.value" "$(grep -E "^($maj:$min|default) " "$3" | sort | flat)"
		else
			fact "cg.$2.write" absent
		fi
	done
	# A process of its own in the child (a subshell's $$ would be ours).
	fact cg.io "$(ok sh -c 'echo $$ >"$1/cgroup.procs" &&
		dd if="$2" of=/dev/null bs=4k count=16 iflag=direct &&
		dd if=/dev/zero of="$2" bs=4k count=16 seek=8192 oflag=direct' \
		sh "$child" "$dev")"
	fact cg.io.stat.rows "$(awk -v d="$maj:$min" '{
		print $1 == d ? "DISK" : $1 ~ /^[0-9]+:[0-9]+$/ ? "other" : $1
	}' "$child/io.stat" | sort -u | tr '\n' ' ')"
	for s in rbytes wbytes rios wios; do
		n=$(awk -v d="$maj:$min" -v k="$s" '$1 == d {
			for (i = 2; i <= NF; i++)
				if (index($i, k "=") == 1) print substr($i, length(k) + 2)
		}' "$child/io.stat")
		fact "cg.io.stat.$s" "$(moved 0 "${n:-0}")"
	done
	# Undo, then drop the child (empty once sh -c has exited).
	[ -e $CG/io.cost.qos ] && wr $CG/io.cost.qos "$maj:$min enable=0" >/dev/null
	vblk_wait 10 "rmdir $child" rmdir "$child"
}


part_there() { [ -e "$sys/${blk}1" ] && [ -b "/dev/${blk}1" ]; }
part_gone() { [ ! -e "$sys/${blk}1" ]; }

# wipe: no partition table, no partition.
wipe() {
	dd if=/dev/zero of="$dev" bs=4k count=256 oflag=direct 2>/dev/null ||
		fail "$name: wiping $dev failed"
	vblk_settle
	blockdev --rereadpt "$dev" 2>/dev/null
	vblk_wait 10 "$name: ${blk}1 gone after wiping $dev" part_gone
}

facts_stat() {
	local s0 s1 p0 p1 pdev=/dev/${blk}1
	vblk_write_mbr "$dev" || fail "$name: writing the MBR to $dev failed"
	# Closing the disk after writing makes udev re-read the table too:
	# let it finish first.
	vblk_settle
	fact part.rereadpt "$(ok blockdev --rereadpt "$dev")"
	vblk_wait 10 "$name: $pdev after re-reading the partition table" part_there
	vblk_settle
	walk part "$sys/${blk}1"

	p0=$(cat "$sys/${blk}1/stat")
	s0=$(cat "$sys/stat")
	fact part.read "$(ok dd if="$pdev" of=/dev/null bs=4k count=16 iflag=direct)"
	fact part.write "$(ok dd if=/dev/zero of="$pdev" bs=4k count=16 seek=256 oflag=direct)"
	p1=$(cat "$sys/${blk}1/stat")
	s1=$(cat "$sys/stat")
	set -- $p0
	fact part.stat.reads "$(moved "$1" "$(echo "$p1" | awk '{ print $1 }')")"
	fact part.stat.writes "$(moved "$5" "$(echo "$p1" | awk '{ print $5 }')")"
	set -- $s0
	fact part.disk_stat.reads "$(moved "$1" "$(echo "$s1" | awk '{ print $1 }')")"
	fact part.disk_stat.writes "$(moved "$5" "$(echo "$s1" | awk '{ print $5 }')")"
	vblk_settle

	# Small buffered sequential writes, then fsync: the page cache
	# writes them back as 4 KiB bios (buffer heads) under a plug, which
	# merge into requests; fsync then flushes the volatile write cache.
	fact stat.fields "$(wc -w <"$sys/stat" | tr -d ' ')"
	s0=$(cat "$sys/stat")
	fact stat.buffered_write "$(ok dd if=/dev/zero of="$dev" bs=4k count=256 seek=4096 conv=fsync)"
	vblk_settle
	echo 3 >/proc/sys/vm/drop_caches
	fact stat.buffered_read "$(ok dd if="$dev" of=/dev/null bs=4k count=256 skip=4096)"
	s1=$(cat "$sys/stat")
	set -- $s0
	# Fields 2 and 6: read and write merges; 16: flush requests
	# (Documentation/block/stat.rst).  Field 17, flush ticks, is time in
	# ms and may stay 0 for fast flushes: not compared.
	fact stat.read_merges "$(moved "$2" "$(echo "$s1" | awk '{ print $2 }')")"
	fact stat.write_merges "$(moved "$6" "$(echo "$s1" | awk '{ print $6 }')")"
	fact stat.flushes "$(moved "${16}" "$(echo "$s1" | awk '{ print $16 }')")"
}

facts_trace() {
	local e
	echo 0 >$TR/tracing_on
	echo >$TR/trace
	for e in block_bio_queue block_rq_issue block_rq_complete; do
		echo 1 >"$TR/events/block/$e/enable" || fail "cannot enable block/$e"
	done
	echo 1 >$TR/tracing_on
	direct_read 64 >/dev/null 2>&1
	echo 0 >$TR/tracing_on
	for e in block_bio_queue block_rq_issue block_rq_complete; do
		echo 0 >"$TR/events/block/$e/enable"
		if grep -q " $e: $maj,$min " $TR/trace; then
			fact "trace.$e" seen
		else
			fact "trace.$e" "not seen"
		fi
	done
	echo >$TR/trace
}

# now: seconds since boot, to 10 ms (no fork).
now() {
	local up _
	read -r up _ </proc/uptime
	echo "${up%.*}${up#*.}"
}

# collect LABEL: the facts of every disk, bound to the driver of LABEL,
# in $OUT/LABEL.NAME.
collect() {
	local t0 t1 times f
	label=$1
	for name in $VBLK_DISKS; do
		dev=$(vblk_dev "$name") || fail "$label: no disk $name"
		blk=${dev#/dev/}
		sys=/sys/block/$blk
		q=$sys/queue
		IFS=: read -r maj min <"$sys/dev"
		raw=$OUT/$label.$name.raw
		: >"$raw"
		ktap_log "$label: $name is $dev ($maj:$min), driver" \
			"$(basename "$(readlink "$sys/device/driver")")," \
			"io_path $(cat "$sys/io_path" 2>/dev/null || echo -)" \
			"($(cat "$sys/io_path_reason" 2>/dev/null || echo -))," \
			"F_BIO bit $(vblk_host_bit "$sys")"
		[ "$(vblk_host_bit "$sys")" = 0 ] ||
			fail "$name: the host offers VIRTIO_BLK_F_BIO; parity is for disks without it (dev.bio=off)"
		times=
		for f in disk sched tune cgroup stat trace; do
			t0=$(now)
			facts_$f
			t1=$(now)
			times="$times $f $(((t1 - t0) / 100)).$(((t1 - t0) % 100 / 10))"
		done
		wipe
		norm <"$raw" >"$OUT/$label.$name"
		f=$(cut -d= -f1 "$OUT/$label.$name" | sort | uniq -d)
		[ -z "$f" ] || fail "test bug: facts recorded twice: $f"
		ktap_log "$label: $name: $(wc -l <"$OUT/$label.$name") facts (s:$times)"
	done
}

# compare A B: the facts that differ, as "- NAME=VALUE-IN-A" and
# "+ NAME=VALUE-IN-B" lines, by name.
compare() {
	awk 'FNR == 1 { f++ }
	     { i = index($0, "="); k = substr($0, 1, i - 1); v = substr($0, i + 1) }
	     f == 1 { a[k] = v } f == 2 { b[k] = v }
	     END {
		for (k in a) {
			if (!(k in b)) print k, 1, "- " k "=" a[k]
			else if (a[k] != b[k]) {
				print k, 1, "- " k "=" a[k]
				print k, 2, "+ " k "=" b[k]
			}
		}
		for (k in b) if (!(k in a)) print k, 2, "+ " k "=" b[k]
	     }' "$1" "$2" | sort -k1,1 -k2,2n | cut -d' ' -f3-
}

# sane FILE: the reference run measured something: the facts the stock
# driver must show on a healthy set-up, else the comparison proves
# nothing.
sane() {
	local f
	for f in "sys.queue/write_cache=write back" "cg.io=ok" "cg.io.stat.rows=DISK " \
		 "cg.io.stat.rbytes=moved" "cg.io.stat.wbytes=moved" "cg.io.max.write=ok" \
		 "part.rereadpt=ok" "part.stat.reads=moved" "part.stat.writes=moved" \
		 "stat.write_merges=moved" "stat.flushes=moved" "stat.fields=17" \
		 "trace.block_bio_queue=seen" "trace.block_rq_issue=seen" \
		 "trace.block_rq_complete=seen" "sched.none.write=ok" \
		 "sched.mq-deadline.write=ok" "tune.nr_requests.after=64"; do
		grep -qxF "$f" "$1" && continue
		while IFS= read -r l; do ktap_log "  stock $l"; done <"$1"
		fail "reference run ($STOCK): no '$f' in $(basename "$1"):" \
			"the test cannot judge parity here"
	done
}

# -- prerequisites -------------------------------------------------------

[ "$VBLK_DRIVER" = both ] ||
	fail "needs a guest booted with --driver both (this one: ${VBLK_DRIVER:-?})"
[ -n "$OURS" ] && [ "$OURS" != "$STOCK" ] ||
	fail "our module must be loaded under another name than $STOCK (got '$OURS')"
[ -d "/sys/bus/virtio/drivers/$STOCK" ] || fail "the stock $STOCK driver is not loaded"
[ ! -e "/sys/module/$STOCK/parameters/io_path" ] ||
	fail "$STOCK is not the in-tree driver (it has an io_path parameter)"
[ -d "/sys/bus/virtio/drivers/$OURS" ] &&
	[ -e "/sys/module/$OURS/parameters/io_path" ] ||
	fail "our driver $OURS is not loaded"
[ -n "$VBLK_DISKS" ] || fail "no disks attached"
[ "$(virtio_blk_devs | wc -l)" = "$VBLK_NDISKS" ] ||
	fail "want exactly the runner's $VBLK_NDISKS disks as virtio block devices"
for t in blockdev dd awk sed sort find uniq; do
	command -v $t >/dev/null || fail "no $t in the guest"
done
if [ ! -e $CG/cgroup.controllers ]; then
	mount -t cgroup2 none $CG || fail "cannot mount cgroup2 on $CG"
fi
grep -qw io $CG/cgroup.controllers || fail "no io controller in cgroup v2"
echo +io >$CG/cgroup.subtree_control || fail "cannot enable +io in $CG"
if [ ! -e $TR/events/block ]; then
	mount -t tracefs nodev $TR || fail "cannot mount tracefs on $TR"
fi
[ -e $TR/events/block/block_rq_issue/enable ] || fail "no block trace events"
[ -d $DBG ] || fail "no $DBG (debugfs)"
ktap_log "stock: $STOCK, candidate: $CAND; $OURS io_path parameter" \
	"$(cat "/sys/module/$OURS/parameters/io_path")"

rm -rf $OUT
mkdir -p $OUT
trap restore EXIT

bind_all $STOCK
collect stock
bind_all "$CAND"
collect "$CAND_LABEL"
bind_all $STOCK
trap - EXIT

# Output, when disks differ: all facts of both drivers, then the
# differences, then one summary line per disk (make check shows a failed
# test's last lines).
summary=
for name in $VBLK_DISKS; do
	sane "$OUT/stock.$name"
	compare "$OUT/stock.$name" "$OUT/$CAND_LABEL.$name" >"$OUT/diff.$name"
	if [ "$CAND" = "$OURS" ]; then
		for fact in $ADDED; do
			grep -qxF "+ $fact" "$OUT/diff.$name" || continue
			grep -vxF "+ $fact" "$OUT/diff.$name" >"$OUT/diff.tmp"
			mv "$OUT/diff.tmp" "$OUT/diff.$name"
			ktap_log "$name: added by $CAND on purpose: $fact"
		done
	fi
	if [ ! -s "$OUT/diff.$name" ]; then
		ktap_log "$name: $(wc -l <"$OUT/stock.$name") facts, identical" \
			"under $STOCK and $CAND"
		continue
	fi
	ktap_log "$name: all facts, $STOCK:"
	while IFS= read -r l; do ktap_log "  stock $l"; done <"$OUT/stock.$name"
	ktap_log "$name: all facts, $CAND:"
	while IFS= read -r l; do
		ktap_log "  $CAND_LABEL $l"
	done <"$OUT/$CAND_LABEL.$name"
	ktap_log "$name: differences (- $STOCK, + $CAND):"
	while IFS= read -r l; do ktap_log "  $l"; done <"$OUT/diff.$name"
	summary="$summary $name"
done
[ -z "$summary" ] && exit $KSFT_PASS
for name in $summary; do
	# e.g. "p1: 86 lines differ: cg 10, sched 20, ..." (by fact group)
	ktap_log "$name: $(wc -l <"$OUT/diff.$name") lines differ:" \
		"$(sed 's/^[-+] \([^.=]*\).*/\1/' "$OUT/diff.$name" | sort | uniq -c |
		   awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1 }')"
done
fail "the disks differ between $STOCK and $CAND:$summary"
