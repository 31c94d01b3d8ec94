#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A vhost-user-blk back end for tests: any virtio-blk config, real data.

QEMU's vhost-user-blk-pci device takes its virtio_blk_config from the
back end (VHOST_USER_GET_CONFIG) and passes most feature bits through, so
this back end can show a guest driver values no stock device would: a
seg_max of 0, a block size of 1000, a physical_block_exp of 255.  It also
serves the data path (split virtqueues, direct and indirect descriptors,
event index or flag-based notification suppression): read, write, flush,
get-id, discard and write-zeroes, on an image held in a memfd or in a
file, so the guest can do real I/O on the device it was given.

QEMU overrides num_queues with its own num-queues property and only offers
VIRTIO_BLK_F_MQ for more than one queue; cfg.num_queues is sent anyway.
GET_QUEUE_NUM answers 256 (see MAX_QUEUES), so QEMU refuses more.

The back end checks every request against the limits it advertised
(seg_max, size_max, blk_size alignment, discard and write-zeroes limits,
read-only) and fails a violating request with VIRTIO_BLK_S_IOERR and a
"VIOLATION:" line on stderr; --lenient LIMIT turns one check off.
Protocol errors print "error:" lines.  The exit status is 0 only when the
front end disconnected and neither happened.  On exit a "summary:" line
counts the requests served.

Zoned (feat.zoned=on, or any zoned cfg field): the zoned fields of the
config (zone_sectors, max_open_zones, max_active_zones,
max_append_sectors, write_granularity, model) and, for model 1
(host-managed), a zoned device: sequential-write-required zones with a
write pointer and a state each (empty, implicitly or explicitly open,
closed, full), writes only at the write pointer (else
VIRTIO_BLK_S_ZONE_UNALIGNED_WP), zone append (the in-header returns the
sector written, at the start of the writable bytes before the status, as
QEMU writes it: the spec's 9-byte in-header and the in-tree driver's
16-byte padded one both read it there), zone report, open, close, finish, reset and reset-all,
and the open and active zone limits (VIRTIO_BLK_S_ZONE_OPEN_RESOURCE,
VIRTIO_BLK_S_ZONE_ACTIVE_RESOURCE; a write that needs an open zone closes
an implicitly open one first, as ZBC devices do).  A reset zone reads
back zeroes.  Defaults: model 1, zones of 2048 sectors (the last one may
be smaller), max_append_sectors 256, write_granularity blk_size, no open
or active limit.  Models 0 and 2 (none, host-aware) are regular disks;
zone commands to a device that is not host-managed fail with
VIRTIO_BLK_S_UNSUPP, and so does discard on a host-managed one.

A fault on demand, for testing how a driver copes with a broken device:
SIGUSR1 arms it ("fault: armed corrupt-used-id" on stderr), and the next
used element written on any queue then carries the id queue size + 7, out
of range, instead of the head of the chain it completes ("fault: wrote
used id N on queue Q"); the request itself is served and later ones are
served as usual.  Signals are not counted: SIGUSR1 while a fault is armed
arms nothing more.  The handler only sets a flag; the serving loop (the
one thread that touches the rings) wakes up for it and turns it into the
armed fault, which it alone reads and clears between two used elements.
A configuration change on demand (--set-file FILE): SIGHUP makes the
back end read FILE, cfg.FIELD=VALUE words separated by white space (fields
of the config only: the features stay), apply them to the config, and,
once the front end has given it a back-end channel
(VHOST_USER_PROTOCOL_F_BACKEND_REQ), send VHOST_USER_BACKEND_CONFIG_CHANGE_MSG
so that QEMU reads the config again and notifies the guest ("config:" on
stderr names what changed).  A bad file is an error.

A fault is intended: it never makes the exit status non-zero, and the
summary counts it (faults=N).

A volatile write cache (--cache writeback): a completed write lands in
the cache, not in the image, and reads see it there; VIRTIO_BLK_T_FLUSH
writes everything cached to the image (and fsyncs it) before it
completes, so a flush makes every write completed before it durable, the
only guarantee a device with a write-back cache gives (virtio-blk has no
FUA: the driver emulates it with a flush after the write).  The device
offers VIRTIO_BLK_F_FLUSH and VIRTIO_BLK_F_CONFIG_WCE with wce 1; a
driver that sets wce to 0 makes it write through (the cache is written
out first).  Discard and write-zeroes go through the cache as writes of
zeroes.  With an --image file, the image is what survives: a new back end
on the same file sees exactly what was persisted.

A power cut on demand: SIGUSR2 cuts the power between two requests (the
handler only sets a flag, as for SIGUSR1).  A real cache may have written
back any part of what it held, in any order, before the power went: the
cut persists a random subset of the unflushed writes, in pieces of
--cut-unit bytes (default 4096, aligned on the disk), each piece with
the probability --cut-persist (default: drawn from [0, 1) at each cut),
applied in the order the writes completed, so each piece ends up as one
of the versions it had since the last flush.  The rest is dropped
("fault: power cut N" on stderr, with the counts and the random seed,
--seed, logged at start).  With --cut-within N the power goes not at
once but just before one of the next N requests, drawn at random, or at
a coin's toss just before the next flush if that comes first (or
CUT_IDLE seconds after the signal if no request comes), so that the cut
lands in the middle of the driver's I/O, often with all the writes since
the last flush in the cache.  The disk is then off: every request, on every
queue, fails with VIRTIO_BLK_S_IOERR without touching the image (a disk
without power would not answer at all, but the driver could then never
finish the I/O in flight, and the guest could not unmount and detach the
disk).  A cut is intended: it never makes the exit status non-zero, and
the summary counts it (power_cuts=N).

  vhost_user_blk.py (--socket PATH | --listen-fd FD) [--size BYTES]
                    [--image FILE] [--serial NAME] [--set KEY=VAL ...]
                    [--cache writeback] [--seed N] [--cut-persist P]
                    [--cut-unit BYTES] [--cut-within N]

KEY is cfg.FIELD (a virtio_blk_config field: capacity, size_max, seg_max,
cylinders, heads, sectors, blk_size, physical_block_exp, alignment_offset,
min_io_size, opt_io_size, wce, num_queues, max_discard_sectors,
max_discard_seg, discard_sector_alignment, max_write_zeroes_sectors,
max_write_zeroes_seg, write_zeroes_may_unmap, max_secure_erase_sectors,
max_secure_erase_seg, secure_erase_sector_alignment, zone_sectors,
max_open_zones, max_active_zones, max_append_sectors, write_granularity,
model, rotation_rate, read_latency_hint) or feat.NAME=on|off (size_max,
seg_max, geometry, ro, blk_size, flush, topology, config_wce, mq, discard,
write_zeroes, secure_erase, zoned, bio, indirect_desc, event_idx).
Setting a field offers the feature that makes the driver read it.
Defaults: seg_max 126, blk_size 512, wce 1, with flush, config_wce,
indirect_desc and event_idx offered.
"""

import argparse
import errno
import mmap
import os
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time

# -- virtio-blk -------------------------------------------------------------
FEATURES = {
    "size_max": 1, "seg_max": 2, "geometry": 4, "ro": 5, "blk_size": 6,
    "flush": 9, "topology": 10, "config_wce": 11, "mq": 12, "discard": 13,
    "write_zeroes": 14, "secure_erase": 16, "zoned": 17, "bio": 20,
    "indirect_desc": 28, "event_idx": 29, "version_1": 32,
}
F_PROTOCOL_FEATURES = 30        # vhost-user's own bit in GET_FEATURES

# name: (offset, struct format, feature that makes the driver read it)
CONFIG = {
    "capacity": (0, "Q", None),
    "size_max": (8, "I", "size_max"),
    "seg_max": (12, "I", "seg_max"),
    "cylinders": (16, "H", "geometry"),
    "heads": (18, "B", "geometry"),
    "sectors": (19, "B", "geometry"),
    "blk_size": (20, "I", "blk_size"),
    "physical_block_exp": (24, "B", "topology"),
    "alignment_offset": (25, "B", "topology"),
    "min_io_size": (26, "H", "topology"),
    "opt_io_size": (28, "I", "topology"),
    "wce": (32, "B", "config_wce"),
    "num_queues": (34, "H", "mq"),
    "max_discard_sectors": (36, "I", "discard"),
    "max_discard_seg": (40, "I", "discard"),
    "discard_sector_alignment": (44, "I", "discard"),
    "max_write_zeroes_sectors": (48, "I", "write_zeroes"),
    "max_write_zeroes_seg": (52, "I", "write_zeroes"),
    "write_zeroes_may_unmap": (56, "B", "write_zeroes"),
    "max_secure_erase_sectors": (60, "I", "secure_erase"),
    "max_secure_erase_seg": (64, "I", "secure_erase"),
    "secure_erase_sector_alignment": (68, "I", "secure_erase"),
    "zone_sectors": (72, "I", "zoned"),
    "max_open_zones": (76, "I", "zoned"),
    "max_active_zones": (80, "I", "zoned"),
    "max_append_sectors": (84, "I", "zoned"),
    "write_granularity": (88, "I", "zoned"),
    "model": (92, "B", "zoned"),
    # VIRTIO_BLK_F_BIO: the medium (include/uapi/linux/virtio_blk_bio.h)
    "rotation_rate": (96, "H", "bio"),
    "read_latency_hint": (100, "I", "bio"),
}
CONFIG_SIZE = 104               # up to and including read_latency_hint

T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 4, 8
T_DISCARD, T_WRITE_ZEROES, T_SECURE_ERASE = 11, 13, 14
T_ZONE_APPEND, T_ZONE_REPORT = 15, 16
T_ZONE_OPEN, T_ZONE_CLOSE, T_ZONE_FINISH = 18, 20, 22
T_ZONE_RESET, T_ZONE_RESET_ALL = 24, 26
ZONE_MGMT = (T_ZONE_OPEN, T_ZONE_CLOSE, T_ZONE_FINISH, T_ZONE_RESET,
             T_ZONE_RESET_ALL)
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2
S_ZONE_INVALID_CMD, S_ZONE_UNALIGNED_WP = 3, 4
S_ZONE_OPEN_RESOURCE, S_ZONE_ACTIVE_RESOURCE = 5, 6
# zoned.model, zone types and states (virtio_blk_zone_descriptor)
Z_NONE, Z_HM, Z_HA = 0, 1, 2
ZT_SWR = 2
ZS_EMPTY, ZS_IOPEN, ZS_EOPEN, ZS_CLOSED, ZS_FULL = 1, 2, 3, 4, 14
ZONE_REPORT_HDR = 64            # nr_zones and 56 reserved bytes
ZONE_DESC = struct.Struct("<QQQBB38x")   # z_cap, z_start, z_wp, type, state
ID_BYTES = 20
SECTOR = 512
LIMITS = ("seg_max", "size_max", "blk_size", "discard", "write_zeroes",
          "secure_erase", "ro", "zoned")
# The ranged requests and the feature that allows each
RANGED = {T_DISCARD: "discard", T_WRITE_ZEROES: "write_zeroes",
          T_SECURE_ERASE: "secure_erase"}

# -- split virtqueue ----------------------------------------------------------
DESC_F_NEXT, DESC_F_WRITE, DESC_F_INDIRECT = 1, 2, 4
AVAIL_F_NO_INTERRUPT = 1
DESC = struct.Struct("<QIHH")

# -- vhost-user -------------------------------------------------------------
(GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE,
 SET_LOG_BASE, SET_LOG_FD, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE,
 GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR,
 GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM,
 SET_VRING_ENABLE) = range(1, 19)
SET_BACKEND_REQ_FD = 21
SET_VRING_ENDIAN, GET_CONFIG, SET_CONFIG = 23, 24, 25
RESET_DEVICE = 34
NAMES = {v: k for k, v in globals().items()
         if k.isupper() and isinstance(v, int) and 1 <= v <= 34 and
         k.startswith(("GET_", "SET_", "RESET_"))}
PROTO_F_MQ, PROTO_F_REPLY_ACK, PROTO_F_BACKEND_REQ = 0, 3, 5
PROTO_F_CONFIG, PROTO_F_RESET_DEVICE = 9, 13
PROTOCOL_FEATURES = ((1 << PROTO_F_MQ) | (1 << PROTO_F_REPLY_ACK) |
                     (1 << PROTO_F_BACKEND_REQ) | (1 << PROTO_F_CONFIG) |
                     (1 << PROTO_F_RESET_DEVICE))
BACKEND_CONFIG_CHANGE_MSG = 2   # on the back-end channel
VERSION, FLAG_REPLY, FLAG_NEED_REPLY = 0x1, 0x4, 0x8
HDR = struct.Struct("<III")
VRING_NOFD = 0x100
MAX_FDS = 8
VIRTIO_QUEUE_MAX = 1024
FAULT_ID_BEYOND = 7     # a corrupt used id is the queue size plus this
CUT_IDLE = 1.0          # s an armed power cut waits for requests at most
# SET_VRING_KICK/CALL/ERR name the ring in 8 bits: QEMU would let rings
# 256 and up overwrite the fds of rings 0-255, so never admit more.
MAX_QUEUES = 256


class ChainError(Exception):
    """The driver put something on the ring that is not a valid chain."""


class Memory:
    """Guest RAM as the front end shared it: regions of memfds we mmap."""

    def __init__(self):
        self.regions = []       # (gpa, size, uaddr, mmap, offset in mmap)
        self.stale = []

    def set_table(self, regions):
        for _, _, _, mm, _ in self.regions:
            try:
                mm.close()
            except BufferError:         # a view is still alive: keep it
                self.stale.append(mm)
        self.regions = []
        for gpa, size, uaddr, offset, fd in regions:
            mm = mmap.mmap(fd, offset + size, mmap.MAP_SHARED,
                           mmap.PROT_READ | mmap.PROT_WRITE)
            os.close(fd)
            self.regions.append((gpa, size, uaddr, mm, offset))

    def _find(self, addr, length, user):
        for gpa, size, uaddr, mm, offset in self.regions:
            base = uaddr if user else gpa
            if base <= addr < base + size:
                return mm, offset + addr - base, size - (addr - base)
        raise ChainError(f"{'user' if user else 'guest'} address {addr:#x} "
                         f"(+{length}) is not in guest memory")

    def user(self, uaddr, length):
        """A view of @length bytes at the front end's address @uaddr."""
        mm, off, left = self._find(uaddr, length, True)
        if length > left:
            raise ChainError(f"ring at {uaddr:#x} crosses a region")
        return memoryview(mm)[off:off + length]

    def guest(self, gpa, length):
        """Views covering @length bytes at guest physical address @gpa."""
        views = []
        while length:
            mm, off, left = self._find(gpa, length, False)
            n = min(left, length)
            views.append(memoryview(mm)[off:off + n])
            gpa += n
            length -= n
        return views


class Vring:
    def __init__(self, index):
        self.index = index
        self.reset()

    def reset(self):
        self.num = 0
        self.addrs = None       # (desc, used, avail) front-end addresses
        self.last_avail = 0
        self.used_idx = None    # read from the ring when it starts
        self.kick = None
        self.call = None
        self.enabled = False
        self.broken = False

    def close_fds(self):
        for fd in (self.kick, self.call):
            if fd is not None:
                os.close(fd)
        self.kick = self.call = None


class Zones:
    """The zones of a host-managed device: sequential write required
    zones, each with a write pointer and a state, and the open and active
    zone limits (0: none)."""

    def __init__(self, backend):
        self.be = backend
        self.zsize = backend.cfg("zone_sectors")
        capacity = backend.cfg("capacity")
        if not self.zsize:
            raise SystemExit(f"{backend.tag}: zoned with cfg.zone_sectors=0")
        self.starts = list(range(0, capacity, self.zsize))
        self.cap = [min(self.zsize, capacity - s) for s in self.starts]
        self.wp = list(self.starts)
        self.state = [ZS_EMPTY] * len(self.starts)
        self.max_open = backend.cfg("max_open_zones")
        self.max_active = backend.cfg("max_active_zones")

    def index(self, sector):
        return sector // self.zsize

    def count(self, *states):
        return sum(1 for st in self.state if st in states)

    def _opened(self):
        return self.count(ZS_IOPEN, ZS_EOPEN)

    def _active(self):
        return self.count(ZS_IOPEN, ZS_EOPEN, ZS_CLOSED)

    def _close(self, z):
        self.state[z] = ZS_EMPTY if self.wp[z] == self.starts[z] else ZS_CLOSED

    def _open(self, z, explicit):
        """Open zone @z; a status.  An implicit open may close an
        implicitly open zone to stay within max_open_zones."""
        st = self.state[z]
        if st in (ZS_IOPEN, ZS_EOPEN):
            if explicit:
                self.state[z] = ZS_EOPEN
            return S_OK
        if st == ZS_EMPTY and self.max_active and self._active() >= self.max_active:
            return S_ZONE_ACTIVE_RESOURCE
        if self.max_open and self._opened() >= self.max_open:
            victim = next((i for i, st in enumerate(self.state) if st == ZS_IOPEN), None)
            if explicit or victim is None:
                return S_ZONE_OPEN_RESOURCE
            self._close(victim)
        self.state[z] = ZS_EOPEN if explicit else ZS_IOPEN
        return S_OK

    def write(self, sector, nsect, append=False):
        """Check and account a write of @nsect sectors at @sector (for an
        append, to the zone starting there); (status, sector written)."""
        z = self.index(sector)
        if z >= len(self.starts) or nsect == 0:
            return S_ZONE_INVALID_CMD, None
        if append and sector != self.starts[z]:
            return S_ZONE_INVALID_CMD, None
        if self.state[z] == ZS_FULL:
            return S_ZONE_INVALID_CMD, None
        at = self.wp[z] if append else sector
        if at != self.wp[z]:
            return S_ZONE_UNALIGNED_WP, None
        if at + nsect > self.starts[z] + self.cap[z]:
            return S_ZONE_INVALID_CMD, None
        status = self._open(z, False)
        if status != S_OK:
            return status, None
        self.wp[z] += nsect
        if self.wp[z] == self.starts[z] + self.cap[z]:
            self.state[z] = ZS_FULL
        return S_OK, at

    def _reset(self, z):
        self.be.zero(self.starts[z], self.wp[z] - self.starts[z])
        self.wp[z] = self.starts[z]
        self.state[z] = ZS_EMPTY

    def manage(self, typ, sector):
        """Open, close, finish, reset or reset-all; a status."""
        if typ == T_ZONE_RESET_ALL:
            for z in range(len(self.starts)):
                self._reset(z)
            return S_OK
        z = self.index(sector)
        if z >= len(self.starts) or sector != self.starts[z]:
            return S_ZONE_INVALID_CMD
        st = self.state[z]
        if typ == T_ZONE_RESET:
            self._reset(z)
        elif typ == T_ZONE_OPEN:
            return S_OK if st == ZS_FULL else self._open(z, True)
        elif typ == T_ZONE_CLOSE:
            if st in (ZS_IOPEN, ZS_EOPEN):
                self._close(z)
        elif typ == T_ZONE_FINISH:
            if st == ZS_EMPTY and self.max_active and self._active() >= self.max_active:
                return S_ZONE_ACTIVE_RESOURCE
            self.wp[z] = self.starts[z] + self.cap[z]
            self.state[z] = ZS_FULL
        return S_OK

    def report(self, sector, room):
        """The report of the zones from the one holding @sector on, as
        many as @room bytes hold."""
        first = self.index(sector)
        n = max(0, min(len(self.starts) - first, (room - ZONE_REPORT_HDR) // ZONE_DESC.size))
        out = bytearray(struct.pack("<Q", n).ljust(ZONE_REPORT_HDR, b"\0"))
        for z in range(first, first + n):
            wp = self.wp[z] if self.state[z] != ZS_FULL else self.starts[z] + self.cap[z]
            out += ZONE_DESC.pack(self.cap[z], self.starts[z], wp, ZT_SWR, self.state[z])
        return bytes(out)


class Cache:
    """A volatile write cache over an image fd: the newest unflushed data
    of each sector, and the unflushed writes in the order they completed
    (what a power cut may have written back)."""

    def __init__(self, fd):
        self.fd = fd
        self.sectors = {}       # sector -> its newest unflushed 512 bytes
        self.writes = []        # (sector, data), in completion order

    def write(self, sector, data):
        for i in range(len(data) // SECTOR):
            self.sectors[sector + i] = data[i * SECTOR:(i + 1) * SECTOR]
        self.writes.append((sector, data))

    def read(self, sector, nbytes):
        """@nbytes at @sector as the driver sees them: the image under
        what the cache holds."""
        data = bytearray(os.pread(self.fd, nbytes, sector * SECTOR))
        if len(data) != nbytes:
            raise OSError(errno.EIO, f"short read of the image at sector {sector}")
        if self.sectors:
            for i in range(nbytes // SECTOR):
                cached = self.sectors.get(sector + i)
                if cached is not None:
                    data[i * SECTOR:(i + 1) * SECTOR] = cached
        return data

    def _runs(self):
        """The cached sectors as (first sector, data) runs."""
        run_start, run = None, []
        for sector in sorted(self.sectors):
            if run and sector != run_start + len(run):
                yield run_start, b"".join(run)
                run = []
            if not run:
                run_start = sector
            run.append(self.sectors[sector])
        if run:
            yield run_start, b"".join(run)

    def flush(self):
        """Write everything cached to the image and make it durable."""
        for sector, data in self._runs():
            self._pwrite(data, sector)
        os.fsync(self.fd)
        self.sectors.clear()
        self.writes.clear()

    def _pwrite(self, data, sector):
        done = os.pwrite(self.fd, data, sector * SECTOR)
        if done != len(data):
            raise OSError(errno.EIO, f"short write of the image at sector {sector}")

    def cut(self, rng, persist, unit):
        """Lose the cache as a power cut does: each @unit-byte piece (on
        the disk's @unit alignment) of each unflushed write reaches the
        image with probability @persist, in completion order; the rest is
        dropped.  Returns (pieces persisted, bytes, pieces dropped, bytes)."""
        per = unit // SECTOR
        kept = kept_bytes = lost = lost_bytes = 0
        for sector, data in self.writes:
            end = sector + len(data) // SECTOR
            pos = sector
            while pos < end:
                stop = min(end, (pos // per + 1) * per)
                piece = data[(pos - sector) * SECTOR:(stop - sector) * SECTOR]
                if rng.random() < persist:
                    self._pwrite(piece, pos)
                    kept += 1
                    kept_bytes += len(piece)
                else:
                    lost += 1
                    lost_bytes += len(piece)
                pos = stop
        os.fsync(self.fd)
        self.sectors.clear()
        self.writes.clear()
        return kept, kept_bytes, lost, lost_bytes


class Stats:
    def __init__(self):
        self.requests = {}
        self.indirect = 0
        self.max_segs = 0
        self.max_seg_bytes = 0
        self.max_bytes = 0
        self.interrupts = 0
        self.faults = 0
        self.power_cuts = 0
        self.after_cut = 0

    def summary(self):
        names = {T_IN: "in", T_OUT: "out", T_FLUSH: "flush", T_GET_ID: "get_id",
                 T_DISCARD: "discard", T_WRITE_ZEROES: "write_zeroes",
                 T_SECURE_ERASE: "secure_erase", T_ZONE_APPEND: "zone_append",
                 T_ZONE_REPORT: "zone_report", T_ZONE_OPEN: "zone_open",
                 T_ZONE_CLOSE: "zone_close", T_ZONE_FINISH: "zone_finish",
                 T_ZONE_RESET: "zone_reset", T_ZONE_RESET_ALL: "zone_reset_all"}
        reqs = " ".join(f"{names.get(t, t)}={n}" for t, n in sorted(self.requests.items()))
        return (f"requests: {reqs or 'none'}; indirect={self.indirect} "
                f"max_segs={self.max_segs} max_seg_bytes={self.max_seg_bytes} "
                f"max_bytes={self.max_bytes} interrupts={self.interrupts} "
                f"faults={self.faults} power_cuts={self.power_cuts} "
                f"failed_after_cut={self.after_cut}")


class Backend:
    def __init__(self, opts):
        self.opts = opts
        self.tag = f"vhost-user-blk[{opts.serial}]"
        self.lenient = set(opts.lenient)
        self.features = 0
        self.config = bytearray(CONFIG_SIZE)
        self._build_config(opts.set)
        self.acked = 0
        self.protocol = 0
        self.mem = Memory()
        self.vrings = {}
        self.stats = Stats()
        self.violations = 0
        self.errors = 0
        self.fence_lock = threading.Lock()
        # SIGUSR1 sets fault_signal (nothing else); the serving loop turns
        # it into fault_armed, which only that loop reads and clears.
        self.fault_signal = False
        self.fault_armed = False
        self.config_signal = False
        self.backend_chan = None
        self.wakeup, wakeup_w = os.pipe()
        for fd in (self.wakeup, wakeup_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wakeup_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGUSR1, self._on_sigusr1)
        # SIGUSR2 sets cut_signal; the serving loop cuts the power.
        self.cut_signal = False
        self.cut_in = None      # requests left before an armed cut
        self.cut_at_flush = False   # or before the next flush
        self.cut_deadline = None
        self.powered = True
        signal.signal(signal.SIGUSR2, self._on_sigusr2)
        signal.signal(signal.SIGHUP, self._on_sighup)
        if opts.image:
            self.fd = os.open(opts.image, os.O_RDWR | os.O_CREAT, 0o600)
        else:
            self.fd = os.memfd_create(f"vhost-blk-{opts.serial}")
        self.image_bytes = self.cfg("capacity") * SECTOR
        os.ftruncate(self.fd, max(self.image_bytes, os.fstat(self.fd).st_size))
        self.zones = Zones(self) if self.host_managed() else None
        self.cache = None
        if opts.cache == "writeback":
            if self.zones:
                raise SystemExit(f"{self.tag}: --cache writeback on a host-managed "
                                 "zoned device is not supported")
            if "flush" not in self._feature_names():
                raise SystemExit(f"{self.tag}: --cache writeback needs feat.flush")
            self.cache = Cache(self.fd)
        if not SECTOR <= opts.cut_unit <= 1 << 20 or opts.cut_unit % SECTOR:
            raise SystemExit(f"{self.tag}: --cut-unit {opts.cut_unit}: want a multiple "
                             f"of {SECTOR} up to 1 MiB")
        if not 0 <= opts.cut_within <= 1 << 16:
            raise SystemExit(f"{self.tag}: --cut-within {opts.cut_within}: want 0 to 65536")
        if opts.cut_persist is not None and not 0 <= opts.cut_persist <= 1:
            raise SystemExit(f"{self.tag}: --cut-persist {opts.cut_persist}: want 0 to 1")
        self.seed = opts.seed if opts.seed is not None else random.randrange(1 << 32)
        self.rng = random.Random(self.seed)
        if self.cache:
            self.log(f"volatile write cache, power cut seed {self.seed}")

    # -- configuration -------------------------------------------------------
    def cfg(self, name):
        off, fmt, _ = CONFIG[name]
        return struct.unpack_from("<" + fmt, self.config, off)[0]

    def _set_cfg(self, name, value):
        off, fmt, _ = CONFIG[name]
        try:
            struct.pack_into("<" + fmt, self.config, off, value)
        except struct.error:
            raise SystemExit(f"{self.tag}: cfg.{name}={value} does not fit the field")

    def has(self, feature):
        return bool(self.features >> FEATURES[feature] & 1)

    def _feature_names(self):
        return {name for name in FEATURES if self.has(name)}

    def negotiated(self, feature):
        return bool(self.acked >> FEATURES[feature] & 1)

    def host_managed(self):
        return self.has("zoned") and self.cfg("model") == Z_HM

    def _build_config(self, settings):
        feats = {"version_1", "indirect_desc", "event_idx", "flush", "config_wce",
                 "seg_max", "blk_size"}
        values = {"seg_max": 126, "blk_size": SECTOR, "wce": 1,
                  "capacity": self.opts.size // SECTOR}
        explicit = {}
        for kv in settings:
            key, sep, val = kv.partition("=")
            kind, dot, name = key.partition(".")
            if not sep or not dot:
                raise SystemExit(f"{self.tag}: bad setting '{kv}', want cfg.F=V or feat.F=on|off")
            if kind == "cfg" and name in CONFIG:
                values[name] = int(val, 0)
                if CONFIG[name][2]:
                    feats.add(CONFIG[name][2])
            elif kind == "feat" and name in FEATURES:
                if val not in ("on", "off"):
                    raise SystemExit(f"{self.tag}: {key} wants on or off")
                explicit[name] = val == "on"
            else:
                raise SystemExit(f"{self.tag}: unknown setting '{key}'")
        for name, on in explicit.items():
            (feats.add if on else feats.discard)(name)
        if "zoned" in feats:
            for name, value in (("model", Z_HM), ("zone_sectors", 2048),
                                ("max_append_sectors", 256),
                                ("write_granularity", values["blk_size"])):
                values.setdefault(name, value)
        for name, value in values.items():
            self._set_cfg(name, value)
        self.features = sum(1 << FEATURES[f] for f in feats) | (1 << F_PROTOCOL_FEATURES)

    # -- faults on demand ----------------------------------------------------
    def _on_sigusr1(self, signum, frame):
        self.fault_signal = True

    def _on_sigusr2(self, signum, frame):
        self.cut_signal = True

    def _on_sighup(self, signum, frame):
        self.config_signal = True

    def take_signals(self):
        """Arm the fault a SIGUSR1 asked for, make the configuration change
        a SIGHUP asked for, cut the power a SIGUSR2 asked to cut (serving
        loop only)."""
        if self.fault_signal:
            self.fault_signal = False
            self.fault_armed = True
            self.log("fault: armed corrupt-used-id")
        if self.config_signal:
            self.config_signal = False
            self.change_config()
        if self.cut_signal:
            self.cut_signal = False
            if self.powered and self.cut_in is None:
                self.cut_in = self.rng.randrange(self.opts.cut_within + 1)
                self.cut_at_flush = self.opts.cut_within > 0 and self.rng.random() < 0.5
                self.cut_deadline = time.monotonic() + CUT_IDLE
                self.log(f"fault: power cut armed, before request {self.cut_in + 1} "
                         f"from now{' or the next flush' if self.cut_at_flush else ''}")
        if self.cut_in is not None and \
                (self.cut_in == 0 or time.monotonic() >= self.cut_deadline):
            self.cut_in = None
            self.power_cut()

    def power_cut(self):
        """Drop what the cache holds, but for a random part of it that
        reached the image first; from now on every request fails."""
        if not self.powered:
            return
        self.powered = False
        self.stats.power_cuts += 1
        if not self.cache:
            self.log("fault: power cut (no volatile cache: nothing lost)")
            return
        persist = self.opts.cut_persist
        if persist is None:
            persist = self.rng.random()
        kept, kept_bytes, lost, lost_bytes = self.cache.cut(self.rng, persist,
                                                            self.opts.cut_unit)
        self.log(f"fault: power cut {self.stats.power_cuts} (seed {self.seed}, "
                 f"persist {persist:.3f}): of the unflushed writes {kept} pieces "
                 f"({kept_bytes} bytes) reached the image, {lost} ({lost_bytes} "
                 f"bytes) were lost; the disk is off")

    def change_config(self):
        """Apply --set-file to the config and tell the front end."""
        try:
            with open(self.opts.set_file or "") as f:
                words = f.read().split()
        except OSError as exc:
            self.error(f"config: cannot read the set file: {exc}")
            return
        changes = []
        for kv in words:
            key, sep, val = kv.partition("=")
            kind, dot, name = key.partition(".")
            if not sep or kind != "cfg" or name not in CONFIG:
                self.error(f"config: bad setting '{kv}', want cfg.FIELD=VALUE")
                return
            try:
                changes.append((name, int(val, 0)))
            except ValueError:
                self.error(f"config: bad value in '{kv}'")
                return
        for name, value in changes:
            self._set_cfg(name, value)
        if self.backend_chan is None:
            self.error("config: no back-end channel to notify the front end on")
            return
        self.backend_chan.sendall(HDR.pack(BACKEND_CONFIG_CHANGE_MSG, VERSION, 0))
        self.log("config: " + " ".join(f"{n}={v}" for n, v in changes) + ", notified")

    # -- logging -------------------------------------------------------------
    def log(self, msg):
        print(f"{self.tag}: {msg}", file=sys.stderr, flush=True)

    def error(self, msg):
        self.errors += 1
        self.log(f"error: {msg}")

    def violation(self, msg):
        self.violations += 1
        self.log(f"VIOLATION: {msg}")

    def check(self, limit, ok, msg):
        """Fail a request that breaks an advertised limit, unless lenient."""
        if ok or limit in self.lenient:
            return True
        self.violation(msg)
        return False

    # -- block requests ------------------------------------------------------
    @staticmethod
    def _slice(segs, start, end):
        """(gpa, len) pieces of the byte range [start, end) of @segs."""
        out, pos = [], 0
        for gpa, length in segs:
            lo, hi = max(start, pos), min(end, pos + length)
            if lo < hi:
                out.append((gpa + lo - pos, hi - lo))
            pos += length
        return out

    def _views(self, segs):
        views = []
        for gpa, length in segs:
            views += self.mem.guest(gpa, length)
        return views

    def _io(self, fn, views, offset):
        """preadv/pwritev of all of @views at @offset; True on success."""
        for i in range(0, len(views), 512):
            chunk = views[i:i + 512]
            want = sum(len(v) for v in chunk)
            try:
                done = fn(self.fd, chunk, offset)
            except OSError as exc:
                self.error(f"image I/O at {offset}: {exc}")
                return False
            if done != want:
                self.error(f"short image I/O at {offset}: {done} of {want}")
                return False
            offset += want
        return True

    def _in_range(self, sector, nbytes):
        return sector * SECTOR + nbytes <= self.image_bytes

    def _aligned(self, sector, nbytes, what):
        if not self.has("blk_size"):
            return True
        bs = self.cfg("blk_size")
        if bs < SECTOR or bs & (bs - 1):
            return True             # no sane alignment to hold the driver to
        return self.check("blk_size", (sector * SECTOR) % bs == 0 and nbytes % bs == 0,
                          f"{what} of {nbytes} bytes at sector {sector} is not "
                          f"aligned to blk_size {bs}")

    def _ranges(self, typ, views, feature):
        """Check and apply discard / write-zeroes / secure erase ranges
        (all three leave zeroes here); a status."""
        data = b"".join(bytes(v) for v in views)
        if len(data) % 16:
            self.violation(f"{feature} payload of {len(data)} bytes")
            return S_IOERR
        nseg = len(data) // 16
        max_seg = self.cfg(f"max_{feature}_seg")
        max_sectors = self.cfg(f"max_{feature}_sectors")
        if not self.check(feature, nseg >= 1 and (not max_seg or nseg <= max_seg),
                          f"{feature} with {nseg} ranges, max_{feature}_seg {max_seg}"):
            return S_IOERR
        ranges = []
        for i in range(nseg):
            sector, num, flags = struct.unpack_from("<QII", data, 16 * i)
            if typ in (T_DISCARD, T_SECURE_ERASE) and flags:
                return S_UNSUPP
            if typ == T_WRITE_ZEROES and flags & ~1:
                return S_UNSUPP
            if not self.check(feature, not max_sectors or num <= max_sectors,
                              f"{feature} of {num} sectors, max_{feature}_sectors "
                              f"{max_sectors}"):
                return S_IOERR
            if not self._aligned(sector, num * SECTOR, feature):
                return S_IOERR
            if not self._in_range(sector, num * SECTOR):
                return S_IOERR
            ranges.append((sector, num))
        for sector, num in ranges:
            if self.zones:
                status = self.zones.write(sector, num)[0]
                if status != S_OK:
                    return status
            self.zero(sector, num)
        return S_OK

    def zero(self, sector, num):
        if self.cache and self.cfg("wce"):
            for start in range(sector, sector + num, 2048):
                self.cache.write(start, bytes(min(2048, sector + num - start) * SECTOR))
            return
        zeroes = bytes(1 << 20)
        off, left = sector * SECTOR, num * SECTOR
        while left:
            n = min(left, len(zeroes))
            os.pwrite(self.fd, zeroes[:n], off)
            off += n
            left -= n

    def _zone_request(self, typ, sector, out_segs, in_segs):
        """A zone command; (status, bytes written before the status)."""
        if not self.zones:
            return S_UNSUPP, 0
        if not self.negotiated("zoned"):
            self.violation(f"zone command {typ} without VIRTIO_BLK_F_ZONED")
            return S_UNSUPP, 0
        if typ == T_ZONE_REPORT:
            room = sum(n for _, n in in_segs)
            if out_segs or room < ZONE_REPORT_HDR:
                self.violation(f"zone report into {room} bytes")
                return S_IOERR, 0
            report = self.zones.report(sector, room)
            pos = 0
            for v in self._views(self._slice(in_segs, 0, len(report))):
                v[:] = report[pos:pos + len(v)]
                pos += len(v)
            return S_OK, len(report)
        if typ in ZONE_MGMT:
            if out_segs or in_segs:
                self.violation(f"zone command {typ} with data")
                return S_IOERR, 0
            return self.zones.manage(typ, sector), 0
        # zone append: data out, then the in-header: the sector written
        # and the status.  QEMU writes the sector at the start of what
        # precedes the status: the in-tree driver's in-header is 16
        # bytes (padded), the spec's 9, and both read it from there.
        nbytes = sum(n for _, n in out_segs)
        room = sum(n for _, n in in_segs)
        limit = self.cfg("max_append_sectors")
        if room < 8 or not nbytes or nbytes % SECTOR or not self._in_range(sector, nbytes):
            self.violation(f"zone append of {nbytes} bytes at {sector}, "
                           f"{room} in-header bytes before the status")
            return S_IOERR, 0
        if not self.check("zoned", nbytes // SECTOR <= limit,
                          f"zone append of {nbytes // SECTOR} sectors, "
                          f"max_append_sectors {limit}"):
            return S_IOERR, 0
        status, at = self.zones.write(sector, nbytes // SECTOR, append=True)
        written = 0
        if status == S_OK:
            if not self._io(os.pwritev, self._views(out_segs), at * SECTOR):
                return S_IOERR, 0
            pos, val = 0, struct.pack("<Q", at)
            for v in self._views(self._slice(in_segs, 0, 8)):
                v[:] = val[pos:pos + len(v)]
                pos += len(v)
            written = room
        return status, written

    def _cached_io(self, typ, sector, nbytes, views):
        """A read or write through the volatile cache (written through
        while the driver has set wce to 0); a status."""
        try:
            if typ == T_IN:
                data = self.cache.read(sector, nbytes)
                pos = 0
                for v in views:
                    v[:] = data[pos:pos + len(v)]
                    pos += len(v)
            elif self.cfg("wce"):
                self.cache.write(sector, b"".join(bytes(v) for v in views))
            elif not self._io(os.pwritev, views, sector * SECTOR):
                return S_IOERR
        except OSError as exc:
            self.error(f"image I/O at sector {sector}: {exc}")
            return S_IOERR
        return S_OK

    def request(self, readable, writable):
        """Serve one request; return the bytes written to the driver."""
        nread = sum(n for _, n in readable)
        nwrite = sum(n for _, n in writable)
        if nread < 16 or nwrite < 1:
            raise ChainError(f"request with {nread} readable and {nwrite} "
                             f"writable bytes")
        hdr = b"".join(bytes(v) for v in self._views(self._slice(readable, 0, 16)))
        typ, _, sector = struct.unpack("<IIQ", hdr)
        status_seg = self._slice(writable, nwrite - 1, nwrite)
        out_segs = self._slice(readable, 16, nread)
        in_segs = self._slice(writable, 0, nwrite - 1)
        self.stats.requests[typ] = self.stats.requests.get(typ, 0) + 1
        data_segs = out_segs if typ != T_IN else in_segs
        if typ in (T_IN, T_OUT):
            self.stats.max_segs = max(self.stats.max_segs, len(data_segs))
            for _, n in data_segs:
                self.stats.max_seg_bytes = max(self.stats.max_seg_bytes, n)
        written = 0
        status = S_OK
        if typ == T_FLUSH and self.cut_at_flush and self.cut_in is not None:
            self.cut_in = None
            self.power_cut()
        if not self.powered:
            self.stats.after_cut += 1
            for v in self._views(status_seg):
                v[0] = S_IOERR
            return 1
        if typ in (T_IN, T_OUT):
            nbytes = sum(n for _, n in data_segs)
            self.stats.max_bytes = max(self.stats.max_bytes, nbytes)
            what = "read" if typ == T_IN else "write"
            seg_max, size_max = self.cfg("seg_max"), self.cfg("size_max")
            longest = max((n for _, n in data_segs), default=0)
            if nbytes % SECTOR or (typ == T_IN and out_segs) or (typ == T_OUT and in_segs):
                self.violation(f"{what} with {len(out_segs)} out / {len(in_segs)} in "
                               f"data pieces, {nbytes} bytes")
                status = S_IOERR
            elif not self.check("seg_max", not self.has("seg_max") or not seg_max or
                                len(data_segs) <= seg_max,
                                f"{what} in {len(data_segs)} segments, seg_max {seg_max}"):
                status = S_IOERR
            elif not self.check("size_max", not self.has("size_max") or
                                longest <= size_max,
                                f"{what} segment of {longest} bytes, size_max {size_max}"):
                status = S_IOERR
            elif not self._aligned(sector, nbytes, what):
                status = S_IOERR
            elif typ == T_OUT and not self.check("ro", not self.has("ro"),
                                                 "write to a read-only device"):
                status = S_IOERR
            elif not self._in_range(sector, nbytes):
                status = S_IOERR
            elif typ == T_OUT and self.zones and \
                    (status := self.zones.write(sector, nbytes // SECTOR)[0]) != S_OK:
                pass
            elif self.cache:
                status = self._cached_io(typ, sector, nbytes, self._views(data_segs))
                written = nbytes if typ == T_IN else 0
            elif typ == T_IN:
                status = S_OK if self._io(os.preadv, self._views(data_segs),
                                          sector * SECTOR) else S_IOERR
                written = nbytes
            else:
                status = S_OK if self._io(os.pwritev, self._views(data_segs),
                                          sector * SECTOR) else S_IOERR
        elif typ == T_FLUSH:
            if not self.check("flush", self.has("flush"), "flush without VIRTIO_BLK_F_FLUSH"):
                status = S_UNSUPP
            elif self.cache:
                try:
                    self.cache.flush()
                except OSError as exc:
                    self.error(f"flushing the cache: {exc}")
                    status = S_IOERR
            else:
                os.fsync(self.fd)
        elif typ == T_GET_ID:
            ident = self.opts.serial.encode()[:ID_BYTES].ljust(ID_BYTES, b"\0")
            n = min(len(ident), nwrite - 1)
            pos = 0
            for v in self._views(self._slice(in_segs, 0, n)):
                v[:] = ident[pos:pos + len(v)]
                pos += len(v)
            written = n
        elif typ in (T_ZONE_APPEND, T_ZONE_REPORT) or typ in ZONE_MGMT:
            status, written = self._zone_request(typ, sector, out_segs, in_segs)
        elif typ in RANGED:
            feature = RANGED[typ]
            if self.zones and typ != T_WRITE_ZEROES:
                status = S_UNSUPP       # no discard or erase of zones
            elif not self.negotiated(feature):
                self.violation(f"{feature} request without the feature")
                status = S_UNSUPP
            elif self.has("ro"):
                status = S_IOERR
            else:
                status = self._ranges(typ, self._views(out_segs), feature)
        else:
            status = S_UNSUPP
        for v in self._views(status_seg):
            v[0] = status
        return written + 1

    # -- virtqueues ----------------------------------------------------------
    def fence(self):
        """A full memory barrier (a locked instruction on x86), between
        publishing our index and reading the driver's, and the reverse."""
        self.fence_lock.acquire()
        self.fence_lock.release()

    def _chain(self, vr, desc, head):
        """Walk a descriptor chain: ([(gpa, len)] readable, [...] writable)."""
        readable, writable = [], []
        table, size, i, seen = desc, vr.num, head, 0
        indirect = False
        while True:
            if i >= size:
                raise ChainError(f"descriptor index {i} beyond a table of {size}")
            addr, length, flags, nxt = DESC.unpack_from(table, 16 * i)
            if flags & DESC_F_INDIRECT:
                if indirect or seen or flags & DESC_F_NEXT:
                    raise ChainError("indirect descriptor inside a chain")
                if not length or length % 16:
                    raise ChainError(f"indirect table of {length} bytes")
                if not self.negotiated("indirect_desc"):
                    raise ChainError("indirect descriptor, not negotiated")
                views = self.mem.guest(addr, length)
                if len(views) != 1:
                    raise ChainError("indirect table crosses a memory region")
                table, size, i, indirect = views[0], length // 16, 0, True
                self.stats.indirect += 1
                continue
            seen += 1
            if seen > size:
                raise ChainError("descriptor chain loops")
            if flags & DESC_F_WRITE:
                writable.append((addr, length))
            elif writable:
                raise ChainError("device-readable descriptor after a writable one")
            else:
                readable.append((addr, length))
            if not flags & DESC_F_NEXT:
                return readable, writable
            i = nxt

    def process(self, vr):
        """Serve everything on @vr's available ring; notify if needed."""
        if vr.broken or not vr.enabled or vr.addrs is None or vr.kick is None:
            return
        num = vr.num
        desc = self.mem.user(vr.addrs[0], 16 * num)
        used = self.mem.user(vr.addrs[1], 6 + 8 * num)
        avail = self.mem.user(vr.addrs[2], 6 + 2 * num)
        event_idx = self.negotiated("event_idx")
        if vr.used_idx is None:
            vr.used_idx = struct.unpack_from("<H", used, 2)[0]
        old_used = vr.used_idx
        try:
            while True:
                avail_idx = struct.unpack_from("<H", avail, 2)[0]
                if (avail_idx - vr.last_avail) & 0xffff > num:
                    raise ChainError(f"avail idx {avail_idx} is more than {num} "
                                     f"ahead of {vr.last_avail}")
                while vr.last_avail != avail_idx:
                    head = struct.unpack_from("<H", avail, 4 + 2 * (vr.last_avail % num))[0]
                    readable, writable = self._chain(vr, desc, head)
                    if self.cut_signal or self.cut_in is not None:
                        self.take_signals()     # the power goes between two requests
                        if self.cut_in:
                            self.cut_in -= 1
                    written = self.request(readable, writable)
                    fault, self.fault_armed = self.fault_armed, False
                    used_id = num + FAULT_ID_BEYOND if fault else head
                    struct.pack_into("<II", used, 4 + 8 * (vr.used_idx % num), used_id, written)
                    if fault:
                        self.stats.faults += 1
                        self.log(f"fault: wrote used id {used_id} on queue {vr.index} "
                                 f"(head {head})")
                    vr.used_idx = (vr.used_idx + 1) & 0xffff
                    vr.last_avail = (vr.last_avail + 1) & 0xffff
                    struct.pack_into("<H", used, 2, vr.used_idx)
                if event_idx:
                    struct.pack_into("<H", used, 4 + 8 * num, vr.last_avail)
                self.fence()
                if struct.unpack_from("<H", avail, 2)[0] == vr.last_avail:
                    break
        except ChainError as exc:
            vr.broken = True
            self.violation(f"queue {vr.index}: {exc}; queue stopped")
        if vr.used_idx == old_used or vr.call is None:
            return
        self.fence()
        if event_idx:
            used_event = struct.unpack_from("<H", avail, 4 + 2 * num)[0]
            notify = (vr.used_idx - used_event - 1) & 0xffff < (vr.used_idx - old_used) & 0xffff
        else:
            notify = not struct.unpack_from("<H", avail, 0)[0] & AVAIL_F_NO_INTERRUPT
        if notify:
            self.stats.interrupts += 1
            os.write(vr.call, struct.pack("<Q", 1))

    # -- vhost-user messages -------------------------------------------------
    def vring(self, index):
        if index >= VIRTIO_QUEUE_MAX:
            raise ValueError(f"vring index {index}")
        if index not in self.vrings:
            self.vrings[index] = Vring(index)
        return self.vrings[index]

    def _reply(self, req, payload):
        self.sock.sendall(HDR.pack(req, VERSION | FLAG_REPLY, len(payload)) + payload)

    def _recv(self):
        """One message: (request, flags, payload, fds), or None at EOF."""
        fds = []
        hdr, anc, _, _ = self.sock.recvmsg(HDR.size, socket.CMSG_LEN(MAX_FDS * 4))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds += list(struct.unpack(f"{len(data) // 4}i", data[:len(data) // 4 * 4]))
        if not hdr:
            return None
        while len(hdr) < HDR.size:
            more = self.sock.recv(HDR.size - len(hdr))
            if not more:
                return None
            hdr += more
        req, flags, size = HDR.unpack(hdr)
        payload = b""
        while len(payload) < size:
            more = self.sock.recv(size - len(payload))
            if not more:
                return None
            payload += more
        return req, flags, payload, fds

    def _vring_fd(self, payload, fds):
        val = struct.unpack_from("<Q", payload)[0]
        vr = self.vring(val & 0xff)
        if val & VRING_NOFD:
            for fd in fds:
                os.close(fd)
            return vr, None
        if len(fds) != 1:
            raise ValueError(f"want one fd, got {len(fds)}")
        return vr, fds[0]

    def _stop(self, vr):
        if vr.kick is not None:
            self.sel.unregister(vr.kick)
            os.close(vr.kick)
            vr.kick = None
        vr.used_idx = None

    def handle(self, req, flags, payload, fds):
        """Act on one front-end message; returns the reply payload or None."""
        if self.opts.trace:
            self.log(f"<- {NAMES.get(req, req)} {payload[:32].hex()} fds={fds}")
        if req == GET_FEATURES:
            return struct.pack("<Q", self.features)
        if req == SET_FEATURES:
            self.acked = struct.unpack_from("<Q", payload)[0]
            extra = self.acked & ~self.features
            if extra:
                self.error(f"front end acked unoffered features {extra:#x}")
        elif req == GET_PROTOCOL_FEATURES:
            return struct.pack("<Q", PROTOCOL_FEATURES)
        elif req == SET_PROTOCOL_FEATURES:
            self.protocol = struct.unpack_from("<Q", payload)[0] & PROTOCOL_FEATURES
        elif req == SET_BACKEND_REQ_FD:
            if len(fds) != 1:
                raise ValueError(f"{len(fds)} fds")
            if self.backend_chan is not None:
                self.backend_chan.close()
            self.backend_chan = socket.socket(fileno=fds[0])
        elif req == GET_QUEUE_NUM:
            return struct.pack("<Q", self.opts.max_queues)
        elif req in (SET_OWNER, SET_VRING_ENDIAN):
            pass
        elif req in (RESET_OWNER, RESET_DEVICE):
            for vr in self.vrings.values():
                self._stop(vr)
                vr.close_fds()
                vr.reset()
        elif req == SET_MEM_TABLE:
            nregions = struct.unpack_from("<I", payload)[0]
            if nregions != len(fds):
                raise ValueError(f"{nregions} regions with {len(fds)} fds")
            regions = [struct.unpack_from("<QQQQ", payload, 8 + 32 * i) + (fds[i],)
                       for i in range(nregions)]
            self.mem.set_table(regions)
            if self.opts.trace:
                for gpa, size, uaddr, off, _ in regions:
                    self.log(f"   region gpa {gpa:#x} size {size:#x} uaddr {uaddr:#x} "
                             f"offset {off:#x}")
        elif req == SET_VRING_NUM:
            index, num = struct.unpack_from("<II", payload)
            if not num or num > 32768 or num & (num - 1):
                raise ValueError(f"vring {index} size {num}")
            self.vring(index).num = num
        elif req == SET_VRING_ADDR:
            index, vflags, desc, used, avail, _ = struct.unpack_from("<IIQQQQ", payload)
            self.vring(index).addrs = (desc, used, avail)
        elif req == SET_VRING_BASE:
            index, num = struct.unpack_from("<II", payload)
            vr = self.vring(index)
            vr.last_avail = num & 0xffff
            vr.used_idx = None
        elif req == GET_VRING_BASE:
            index = struct.unpack_from("<I", payload)[0]
            vr = self.vring(index)
            self._stop(vr)
            vr.enabled = False
            return struct.pack("<II", index, vr.last_avail)
        elif req == SET_VRING_KICK:
            vr, fd = self._vring_fd(payload, fds)
            self._stop(vr)
            if fd is None:
                self.error(f"vring {vr.index}: polling mode is not supported")
            else:
                vr.kick = fd
                vr.broken = False
                os.set_blocking(fd, False)
                self.sel.register(fd, selectors.EVENT_READ, vr)
                if not self.acked >> F_PROTOCOL_FEATURES & 1:
                    vr.enabled = True
                self.process(vr)
        elif req == SET_VRING_CALL:
            vr, fd = self._vring_fd(payload, fds)
            if vr.call is not None:
                os.close(vr.call)
            vr.call = fd
        elif req == SET_VRING_ERR:
            _, fd = self._vring_fd(payload, fds)
            if fd is not None:
                os.close(fd)
        elif req == SET_VRING_ENABLE:
            index, num = struct.unpack_from("<II", payload)
            vr = self.vring(index)
            vr.enabled = bool(num)
            self.process(vr)
        elif req == GET_CONFIG:
            offset, size, _ = struct.unpack_from("<III", payload)
            data = bytes(self.config[offset:offset + size]).ljust(size, b"\0")
            return struct.pack("<III", offset, size, 0) + data
        elif req == SET_CONFIG:
            offset, size, _ = struct.unpack_from("<III", payload)
            data = payload[12:12 + size]
            if (offset, size) == (CONFIG["wce"][0], 1) and self.has("config_wce"):
                if self.cache and not data[0] and self.powered:
                    self.cache.flush()      # write-through from now on
                self.config[offset] = data[0]
                self.log(f"wce set to {data[0]}")
            else:
                self.error(f"SET_CONFIG of {size} bytes at {offset} refused")
        else:
            for fd in fds:
                os.close(fd)
            self.error(f"unsupported request {NAMES.get(req, req)}")
        return None

    def serve(self, sock):
        self.sock = sock
        self.sel = selectors.DefaultSelector()
        self.sel.register(sock, selectors.EVENT_READ, None)
        self.sel.register(self.wakeup, selectors.EVENT_READ, self)
        while True:
            events = self.sel.select(None if self.cut_in is None else 0.1)
            self.take_signals()
            # Front-end messages first: they may change what a kick means.
            if any(key.data is None for key, _ in events):
                msg = self._recv()
                if msg is None:
                    break
                req, flags, payload, fds = msg
                try:
                    reply = self.handle(req, flags, payload, fds)
                except (ValueError, struct.error, OSError) as exc:
                    self.error(f"{NAMES.get(req, req)}: {exc}")
                    reply = None
                if reply is not None:
                    self._reply(req, reply)
                elif flags & FLAG_NEED_REPLY and self.protocol >> PROTO_F_REPLY_ACK & 1:
                    self._reply(req, struct.pack("<Q", 0))
                continue
            for key, _ in events:
                vr = key.data
                if vr is self:          # a signal's byte: take_signals() saw it
                    while True:
                        try:
                            os.read(self.wakeup, 64)
                        except BlockingIOError:
                            break
                    continue
                try:
                    os.read(vr.kick, 8)
                except BlockingIOError:
                    pass
                self.process(vr)
        self.log(f"summary: {self.stats.summary()}")
        return 1 if self.violations or self.errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="listen on this unix socket path")
    where.add_argument("--listen-fd", type=int, help="inherited listening socket")
    ap.add_argument("--size", type=int, default=64 << 20,
                    help="image bytes (default 64 MiB) unless cfg.capacity is set")
    ap.add_argument("--image", help="image file, made if missing (default: a memfd)")
    ap.add_argument("--serial", default="vhost", help="GET_ID answer (20 bytes max)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VAL")
    ap.add_argument("--lenient", action="append", default=[], choices=LIMITS,
                    help="do not fail requests that break this limit")
    ap.add_argument("--cache", choices=("none", "writeback"), default="none",
                    help="writeback: a volatile write cache that flush persists")
    ap.add_argument("--seed", type=int, help="seed of the power cut's choices "
                    "(default: random, logged)")
    ap.add_argument("--cut-persist", type=float, metavar="P",
                    help="probability that a piece of an unflushed write reaches "
                    "the image at a power cut (default: random at each cut)")
    ap.add_argument("--cut-within", type=int, default=0, metavar="N",
                    help="cut the power just before one of the next N requests "
                    "after SIGUSR2, drawn at random (default 0: at once)")
    ap.add_argument("--cut-unit", type=int, default=4096, metavar="BYTES",
                    help="the pieces a power cut persists or drops (default 4096)")
    ap.add_argument("--set-file", metavar="FILE",
                    help="cfg.FIELD=VALUE words applied on SIGHUP, then notified")
    ap.add_argument("--max-queues", type=int, default=MAX_QUEUES,
                    help=f"answer to GET_QUEUE_NUM (default {MAX_QUEUES})")
    ap.add_argument("--trace", action="store_true",
                    default=bool(os.environ.get("VHOST_USER_BLK_TRACE")),
                    help="log every message (also: VHOST_USER_BLK_TRACE=1)")
    opts = ap.parse_args()

    backend = Backend(opts)
    if opts.socket:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(opts.socket)
        listener.listen(1)
    else:
        listener = socket.socket(fileno=opts.listen_fd)
    conn, _ = listener.accept()
    listener.close()
    try:
        return backend.serve(conn)
    except OSError as exc:
        if exc.errno not in (errno.ECONNRESET, errno.EPIPE):
            raise
        backend.log(f"summary: {backend.stats.summary()}")
        return 1 if backend.violations or backend.errors else 0


if __name__ == "__main__":
    sys.exit(main())
