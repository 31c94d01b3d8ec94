#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Unit test of selftests/host/vhost_user_blk.py, without QEMU or a guest.

This script is the front end and the driver at once: it shares a memfd
as "guest memory" (two regions, contiguous in guest addresses but not in
user addresses), sets up a split virtqueue the vhost-user way, puts
requests on it (direct chains, indirect tables, buffers crossing the
region boundary) and checks the data, status bytes, used lengths and
notifications the back end produces, then that the back end refuses what
it must (limit violations, malformed chains) and still answers, and that
SIGUSR1 makes it write one used element with an out-of-range id (the
fault guest tests ask for with "vblk_host backend NAME break-used-id"),
and that its host-managed zoned emulation keeps write pointers, zone
states and the open and active limits as the virtio spec says.
A back end that fails here would make every guest test on it meaningless.

Output is KTAP; exit status 0 when everything passed.
"""

import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = os.path.join(HERE, "vhost_user_blk.py")
sys.path.insert(0, HERE)
import ktap  # noqa: E402
import vhost_user_blk as vub  # noqa: E402

MEM = 4 << 20
HALF = MEM // 2
UADDR = (0x10000000, 0x30000000)     # user addresses of the two regions
NUM = 16
DESC_GPA, AVAIL_GPA, USED_GPA = 0x1000, 0x2000, 0x3000
TABLE_GPA, HDR_GPA, STATUS_GPA, ID_GPA = 0x4000, 0x8000, 0x9000, 0xa000
DATA_GPA = 0x10000
CROSS_GPA = HALF - 0x1000            # 8 KiB here straddle the regions
SERIAL = "unit-serial"
CAPACITY = 8 << 20


class Frontend:
    """The QEMU side of the socket plus a driver's view of one ring."""

    def __init__(self, args, tmp):
        path = os.path.join(tmp, f"vu{len(os.listdir(tmp))}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        self.log = open(os.path.join(tmp, f"{os.path.basename(path)}.log"), "w+")
        self.proc = subprocess.Popen(
            [sys.executable, BACKEND, "--listen-fd", str(listener.fileno()),
             "--serial", SERIAL, "--size", str(CAPACITY)] + args,
            stdout=self.log, stderr=subprocess.STDOUT, pass_fds=(listener.fileno(),))
        listener.close()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(10)
        self.memfd = os.memfd_create("guest")
        os.ftruncate(self.memfd, MEM)
        self.mem = mmap.mmap(self.memfd, MEM)
        self.kick = os.eventfd(0, os.EFD_NONBLOCK)
        self.call = os.eventfd(0, os.EFD_NONBLOCK)
        self.avail_idx = 0
        self.used_seen = 0

    # -- vhost-user ---------------------------------------------------------
    def send(self, req, payload=b"", fds=(), reply=False):
        msg = vub.HDR.pack(req, vub.VERSION, len(payload)) + payload
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] \
            if fds else []
        self.sock.sendmsg([msg], anc)
        if not reply:
            return None
        hdr = self._recv(vub.HDR.size)
        rreq, flags, size = vub.HDR.unpack(hdr)
        assert rreq == req and flags & vub.FLAG_REPLY, (rreq, flags)
        return self._recv(size)

    def _recv(self, n):
        data = b""
        while len(data) < n:
            more = self.sock.recv(n - len(data))
            if not more:
                raise EOFError("back end closed the socket")
            data += more
        return data

    def u64(self, req):
        return struct.unpack("<Q", self.send(req, reply=True))[0]

    def handshake(self, features=None):
        offered = self.u64(vub.GET_FEATURES)
        self.features = offered if features is None else features
        self.send(vub.SET_FEATURES, struct.pack("<Q", self.features))
        proto = self.u64(vub.GET_PROTOCOL_FEATURES)
        self.send(vub.SET_PROTOCOL_FEATURES,
                  struct.pack("<Q", proto & ((1 << vub.PROTO_F_CONFIG) | (1 << vub.PROTO_F_MQ))))
        regions = struct.pack("<II", 2, 0)
        for i in range(2):
            regions += struct.pack("<QQQQ", i * HALF, HALF, UADDR[i], i * HALF)
        fds = [os.dup(self.memfd), os.dup(self.memfd)]
        self.send(vub.SET_MEM_TABLE, regions.ljust(8 + 32 * 8, b"\0"), fds=fds)
        for fd in fds:
            os.close(fd)
        self.send(vub.SET_VRING_NUM, struct.pack("<II", 0, NUM))
        self.send(vub.SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, UADDR[0] + DESC_GPA,
                                                  UADDR[0] + USED_GPA,
                                                  UADDR[0] + AVAIL_GPA, 0))
        self.send(vub.SET_VRING_BASE, struct.pack("<II", 0, 0))
        self.send(vub.SET_VRING_CALL, struct.pack("<Q", 0), fds=[self.call])
        self.send(vub.SET_VRING_KICK, struct.pack("<Q", 0), fds=[self.kick])
        self.send(vub.SET_VRING_ENABLE, struct.pack("<II", 0, 1))
        return offered, proto

    def config(self):
        data = self.send(vub.GET_CONFIG, struct.pack("<III", 0, 60, 0) + bytes(60),
                         reply=True)
        return data[12:]

    def finish(self):
        """Close the socket; return (exit status, back-end log)."""
        self.sock.close()
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.seek(0)
        return rc, self.log.read()

    def log_text(self):
        """The back end's log so far (through another open file: the back
        end writes through our file's offset, which must not move)."""
        with open(self.log.name) as f:
            return f.read()

    def wait_log(self, text, timeout=5):
        """Whether @text appears in the back end's log within @timeout s."""
        deadline = time.time() + timeout
        while text not in self.log_text():
            if time.time() > deadline:
                return False
            time.sleep(0.01)
        return True

    # -- the driver's side of the ring ----------------------------------------
    def desc(self, table, i, addr, length, flags, nxt=0):
        struct.pack_into("<QIHH", self.mem, table + 16 * i, addr, length, flags, nxt)

    def chain(self, segs, table=DESC_GPA, first=0):
        """Write (addr, len, writable) pieces as a chain starting at @first."""
        for k, (addr, length, writable) in enumerate(segs):
            flags = (vub.DESC_F_WRITE if writable else 0) | \
                (vub.DESC_F_NEXT if k + 1 < len(segs) else 0)
            self.desc(table, first + k, addr, length, flags, first + k + 1)

    def submit(self, head):
        struct.pack_into("<H", self.mem, AVAIL_GPA + 4 + 2 * (self.avail_idx % NUM), head)
        self.avail_idx = (self.avail_idx + 1) & 0xffff
        struct.pack_into("<H", self.mem, AVAIL_GPA + 2, self.avail_idx)
        os.eventfd_write(self.kick, 1)

    def used_idx(self):
        return struct.unpack_from("<H", self.mem, USED_GPA + 2)[0]

    def wait_used(self, timeout=5):
        """The next used element (id, len), or None if none came."""
        deadline = time.time() + timeout
        while self.used_idx() == self.used_seen:
            if time.time() > deadline:
                return None
            time.sleep(0.002)
        elem = struct.unpack_from("<II", self.mem, USED_GPA + 4 + 8 * (self.used_seen % NUM))
        self.used_seen = (self.used_seen + 1) & 0xffff
        return elem

    def interrupted(self, timeout=0.5):
        """Whether the back end signalled the call eventfd (and clear it)."""
        ready, _, _ = select.select([self.call], [], [], timeout)
        if ready:
            os.eventfd_read(self.call)
        return bool(ready)

    def request(self, typ, sector, data_segs, write, indirect=False, head=0):
        """One request: header, data pieces [(gpa, len)], status, in the
        chain at descriptor @head; returns (status, used len) or None when
        the back end did not answer.  A used id other than @head raises."""
        struct.pack_into("<IIQ", self.mem, HDR_GPA, typ, 0, sector)
        self.mem[STATUS_GPA] = 0xff
        segs = [(HDR_GPA, 16, False)] + [(a, n, not write) for a, n in data_segs] + \
            [(STATUS_GPA, 1, True)]
        if indirect:
            self.chain(segs, TABLE_GPA)
            self.desc(DESC_GPA, head, TABLE_GPA, 16 * len(segs), vub.DESC_F_INDIRECT)
        else:
            self.chain(segs, first=head)
        self.submit(head)
        used = self.wait_used()
        if used is None:
            return None
        assert used[0] == head, f"used id {used[0]}, want {head}"
        return self.mem[STATUS_GPA], used[1]


def pattern(n, seed):
    return bytes((i * 7 + seed + (i >> 9)) & 0xff for i in range(n))


def main():
    return ktap.run(30, [run_all, run_zoned], "vhost-unit-")


def run_all(k, tmp):

    # -- a sane device with discard and write-zeroes -------------------------
    fe = Frontend(["--set", "cfg.seg_max=8", "--set", "cfg.size_max=65536",
                   "--set", "cfg.max_discard_sectors=0", "--set", "cfg.max_discard_seg=4",
                   "--set", "cfg.max_write_zeroes_sectors=2048",
                   "--set", "cfg.max_write_zeroes_seg=1"], tmp)
    offered, proto = fe.handshake()

    def handshake():
        want = ["version_1", "indirect_desc", "event_idx", "flush", "seg_max",
                "size_max", "blk_size", "discard", "write_zeroes"]
        missing = [f for f in want if not offered >> vub.FEATURES[f] & 1]
        ok = not missing and offered >> vub.F_PROTOCOL_FEATURES & 1 and \
            proto >> vub.PROTO_F_CONFIG & 1 and not offered >> vub.FEATURES["mq"] & 1
        return ok, f"features {offered:#x} protocol {proto:#x}, missing {missing}"
    k.attempt("handshake-features", handshake)

    def config():
        cfg = fe.config()
        cap, size_max, seg_max = struct.unpack_from("<QII", cfg)
        blk = struct.unpack_from("<I", cfg, 20)[0]
        dsec, dseg = struct.unpack_from("<II", cfg, 36)
        return ((cap, size_max, seg_max, blk, dsec, dseg) ==
                (CAPACITY // 512, 65536, 8, 512, 0, 4), cfg.hex())
    k.attempt("get-config", config)

    data = pattern(16384, 3)

    def write_direct():
        fe.mem[DATA_GPA:DATA_GPA + 16384] = data
        res = fe.request(vub.T_OUT, 8, [(DATA_GPA, 4096), (DATA_GPA + 4096, 8192),
                                        (DATA_GPA + 12288, 4096)], write=True)
        return res == (0, 1), f"status/used len {res}"
    k.attempt("write-direct-chain", write_direct)

    def read_indirect():
        fe.mem[DATA_GPA:DATA_GPA + 16384] = bytes(16384)
        res = fe.request(vub.T_IN, 8, [(DATA_GPA, 10240), (DATA_GPA + 10240, 6144)],
                         write=False, indirect=True)
        return (res == (0, 16385) and fe.mem[DATA_GPA:DATA_GPA + 16384] == data,
                f"status/used len {res}")
    k.attempt("read-indirect-table", read_indirect)

    def cross_region():
        other = pattern(8192, 11)
        fe.mem[CROSS_GPA:CROSS_GPA + 8192] = other
        w = fe.request(vub.T_OUT, 1000, [(CROSS_GPA, 8192)], write=True)
        fe.mem[CROSS_GPA:CROSS_GPA + 8192] = bytes(8192)
        r = fe.request(vub.T_IN, 1000, [(CROSS_GPA, 8192)], write=False)
        return (w == (0, 1) and r == (0, 8193) and
                fe.mem[CROSS_GPA:CROSS_GPA + 8192] == other, f"write {w} read {r}")
    k.attempt("buffer-across-regions", cross_region)

    def flush_and_id():
        f = fe.request(vub.T_FLUSH, 0, [], write=True)
        fe.mem[ID_GPA:ID_GPA + 20] = b"\xff" * 20
        i = fe.request(vub.T_GET_ID, 0, [(ID_GPA, 20)], write=False)
        ident = bytes(fe.mem[ID_GPA:ID_GPA + 20])
        return (f == (0, 1) and i == (0, 21) and ident == SERIAL.encode().ljust(20, b"\0"),
                f"flush {f} get-id {i} {ident!r}")
    k.attempt("flush-and-get-id", flush_and_id)

    def out_of_range():
        r = fe.request(vub.T_IN, CAPACITY // 512 - 4, [(DATA_GPA, 4096)], write=False)
        u = fe.request(99, 0, [], write=True)
        return r == (vub.S_IOERR, 1) and u == (vub.S_UNSUPP, 1), f"read {r} type 99 {u}"
    k.attempt("beyond-capacity-and-unknown-type", out_of_range)

    def discard_write_zeroes():
        ranges = struct.pack("<QII", 8, 8, 0) + struct.pack("<QII", 24, 4, 0)
        fe.mem[DATA_GPA + 65536:DATA_GPA + 65536 + 32] = ranges
        d = fe.request(vub.T_DISCARD, 0, [(DATA_GPA + 65536, 32)], write=True)
        fe.mem[DATA_GPA:DATA_GPA + 16384] = b"\xff" * 16384
        r = fe.request(vub.T_IN, 8, [(DATA_GPA, 16384)], write=False)
        back = bytes(fe.mem[DATA_GPA:DATA_GPA + 16384])
        want = bytes(4096) + data[4096:8192] + bytes(2048) + data[10240:]
        fe.mem[DATA_GPA + 65536:DATA_GPA + 65536 + 16] = struct.pack("<QII", 8, 8, 1)
        bad = fe.request(vub.T_DISCARD, 0, [(DATA_GPA + 65536, 16)], write=True)
        fe.mem[DATA_GPA + 65536:DATA_GPA + 65536 + 16] = struct.pack("<QII", 16, 8, 1)
        z = fe.request(vub.T_WRITE_ZEROES, 0, [(DATA_GPA + 65536, 16)], write=True)
        r2 = fe.request(vub.T_IN, 16, [(DATA_GPA, 4096)], write=False)
        zeroed = bytes(fe.mem[DATA_GPA:DATA_GPA + 4096]) == bytes(4096)
        return (d == (0, 1) and r == (0, 16385) and back == want and
                bad == (vub.S_UNSUPP, 1) and z == (0, 1) and r2 == (0, 4097) and zeroed,
                f"discard {d} read {r} match {back == want} unmap-discard {bad} "
                f"write-zeroes {z} zeroed {zeroed}")
    k.attempt("discard-and-write-zeroes", discard_write_zeroes)

    def event_idx():
        fe.interrupted(0)
        # used_event = the index the next used entry gets: interrupt
        struct.pack_into("<H", fe.mem, AVAIL_GPA + 4 + 2 * NUM, fe.used_seen)
        a = fe.request(vub.T_FLUSH, 0, [], write=True)
        first = fe.interrupted()
        # used_event well ahead: no interrupt for one more entry
        struct.pack_into("<H", fe.mem, AVAIL_GPA + 4 + 2 * NUM, (fe.used_seen + 5) & 0xffff)
        b = fe.request(vub.T_FLUSH, 0, [], write=True)
        second = fe.interrupted(0.3)
        avail_event = struct.unpack_from("<H", fe.mem, USED_GPA + 4 + 8 * NUM)[0]
        return (a == (0, 1) and b == (0, 1) and first and not second and
                avail_event == fe.avail_idx,
                f"interrupt when due {first}, when suppressed {second}, "
                f"avail_event {avail_event} (avail idx {fe.avail_idx})")
    k.attempt("event-idx-notifications", event_idx)

    def vring_base():
        base = fe.send(vub.GET_VRING_BASE, struct.pack("<II", 0, 0), reply=True)
        index, num = struct.unpack("<II", base)
        return index == 0 and num == fe.avail_idx, f"{index} {num} vs {fe.avail_idx}"
    k.attempt("get-vring-base", vring_base)

    rc, log = fe.finish()
    k.check(rc == 0 and "indirect=1 " in log and "VIOLATION" not in log,
            "clean-exit-with-summary", log)

    # -- absurd values travel as given ----------------------------------------
    fe = Frontend(["--set", "cfg.seg_max=0", "--set", "cfg.blk_size=1000",
                   "--set", "cfg.physical_block_exp=255", "--set", "cfg.num_queues=0",
                   "--set", "cfg.opt_io_size=4294967295", "--set", "feat.event_idx=off"],
                  tmp)
    offered, _ = fe.handshake()

    def absurd_config():
        cfg = fe.config()
        seg_max, blk, pbe = struct.unpack_from("<I", cfg, 12)[0], \
            struct.unpack_from("<I", cfg, 20)[0], cfg[24]
        nq, opt = struct.unpack_from("<H", cfg, 34)[0], struct.unpack_from("<I", cfg, 28)[0]
        feats = all(offered >> vub.FEATURES[f] & 1 for f in ("seg_max", "blk_size",
                                                             "topology", "mq"))
        return ((seg_max, blk, pbe, nq, opt) == (0, 1000, 255, 0, 0xffffffff) and feats and
                not offered >> vub.FEATURES["event_idx"] & 1,
                f"{cfg.hex()} features {offered:#x}")
    k.attempt("absurd-config-passes-through", absurd_config)

    def no_interrupt_flag():
        fe.interrupted(0)
        struct.pack_into("<H", fe.mem, AVAIL_GPA, vub.AVAIL_F_NO_INTERRUPT)
        a = fe.request(vub.T_FLUSH, 0, [], write=True)
        quiet = not fe.interrupted(0.3)
        struct.pack_into("<H", fe.mem, AVAIL_GPA, 0)
        b = fe.request(vub.T_FLUSH, 0, [], write=True)
        loud = fe.interrupted()
        return a == (0, 1) and b == (0, 1) and quiet and loud, f"{a} {b} {quiet} {loud}"
    k.attempt("no-interrupt-flag", no_interrupt_flag)

    def set_config_wce():
        fe.send(vub.SET_CONFIG, struct.pack("<III", 32, 1, 0) + b"\0")
        return fe.config()[32] == 0, "wce still set"
    k.attempt("set-config-wce", set_config_wce)
    rc, log = fe.finish()
    k.check(rc == 0, "absurd-device-clean-exit", log)

    # -- what the back end must refuse ----------------------------------------
    fe = Frontend(["--set", "cfg.seg_max=2", "--set", "cfg.blk_size=4096"], tmp)
    fe.handshake()

    def seg_max_violation():
        r = fe.request(vub.T_OUT, 0, [(DATA_GPA, 4096), (DATA_GPA + 4096, 4096),
                                      (DATA_GPA + 8192, 4096)], write=True)
        a = fe.request(vub.T_OUT, 1, [(DATA_GPA, 4096)], write=True)
        ok = fe.request(vub.T_OUT, 8, [(DATA_GPA, 4096), (DATA_GPA + 4096, 4096)],
                        write=True)
        return (r == (vub.S_IOERR, 1) and a == (vub.S_IOERR, 1) and ok == (0, 1),
                f"3 segments {r}, unaligned {a}, 2 aligned segments {ok}")
    k.attempt("limits-enforced", seg_max_violation)

    def malformed_chain():
        fe.desc(DESC_GPA, 0, HDR_GPA, 16, vub.DESC_F_NEXT, 1)
        fe.desc(DESC_GPA, 1, DATA_GPA, 512, vub.DESC_F_NEXT, 0)     # loops to 0
        fe.submit(0)
        used = fe.wait_used(0.5)
        base = fe.send(vub.GET_VRING_BASE, struct.pack("<II", 0, 0), reply=True)
        return used is None and base is not None, f"used {used}"
    k.attempt("malformed-chain-stops-queue", malformed_chain)

    rc, log = fe.finish()
    k.check(rc == 1 and log.count("VIOLATION") == 3 and "descriptor chain loops" in log,
            "violations-fail-the-exit-status", log)

    # -- a broken device on demand: SIGUSR1 -----------------------------------
    fe = Frontend([], tmp)
    fe.handshake()

    def fault_armed():
        before = [fe.request(vub.T_FLUSH, 0, [], write=True, head=h) for h in (3, 9)]
        early = "fault:" in fe.log_text()
        os.kill(fe.proc.pid, signal.SIGUSR1)
        armed = fe.wait_log("fault: armed corrupt-used-id")
        return (before == [(0, 1), (0, 1)] and not early and armed,
                f"true ids before the signal: {before}, fault line before it {early}, "
                f"armed line {armed}\n{fe.log_text()}")
    k.attempt("sigusr1-arms-a-fault", fault_armed)

    def fault_written():
        # The next element carries an out-of-range id; the request is served.
        struct.pack_into("<IIQ", fe.mem, HDR_GPA, vub.T_FLUSH, 0, 0)
        fe.mem[STATUS_GPA] = 0xff
        fe.chain([(HDR_GPA, 16, False), (STATUS_GPA, 1, True)], first=5)
        fe.submit(5)
        bad = fe.wait_used()
        status = fe.mem[STATUS_GPA]
        # Then true ids again, the same head included.
        after = [fe.request(vub.T_FLUSH, 0, [], write=True, head=h) for h in (5, 2)]
        log = fe.log_text()
        line = bad is not None and f"fault: wrote used id {bad[0]} on queue 0" in log
        return (bad is not None and bad[0] >= NUM and bad[1] == 1 and status == 0 and
                after == [(0, 1), (0, 1)] and line and log.count("fault: wrote") == 1,
                f"faulted element {bad} (queue size {NUM}) status {status}, "
                f"then {after}\n{log}")
    k.attempt("fault-corrupts-one-used-id", fault_written)

    rc, log = fe.finish()
    k.check(rc == 0 and "faults=1" in log and "VIOLATION" not in log and "error:" not in log,
            "fault-counted-not-failed", log)


ZONE = 2048                 # sectors per zone of the zoned device
APPEND_GPA = 0xb000         # a zone append's sector in the in-header
REPORT_GPA = 0x20000


def zone_append(fe, zone_start, gpa, nbytes, padded=False):
    """A zone append of @nbytes at @gpa to the zone at @zone_start, the
    sector and the status in two descriptors (the spec's 9 bytes), or with
    @padded in one of 16 (the in-tree driver's): (status, used len, sector
    written) or None."""
    struct.pack_into("<IIQ", fe.mem, HDR_GPA, vub.T_ZONE_APPEND, 0, zone_start)
    fe.mem[APPEND_GPA:APPEND_GPA + 16] = b"\xee" * 16
    fe.mem[STATUS_GPA] = 0xff
    inhdr = [(APPEND_GPA, 16, True)] if padded else \
        [(APPEND_GPA, 8, True), (STATUS_GPA, 1, True)]
    fe.chain([(HDR_GPA, 16, False), (gpa, nbytes, False)] + inhdr)
    fe.submit(0)
    used = fe.wait_used()
    if used is None:
        return None
    status = fe.mem[APPEND_GPA + 15] if padded else fe.mem[STATUS_GPA]
    return status, used[1], struct.unpack_from("<Q", fe.mem, APPEND_GPA)[0]


def zone_report(fe, sector, nzones):
    """The zones from @sector on, room for @nzones: (status, used len,
    [(cap, start, wp, type, state)])."""
    room = vub.ZONE_REPORT_HDR + nzones * vub.ZONE_DESC.size
    fe.mem[REPORT_GPA:REPORT_GPA + room] = b"\xee" * room
    res = fe.request(vub.T_ZONE_REPORT, sector, [(REPORT_GPA, room)], write=False)
    n = struct.unpack_from("<Q", fe.mem, REPORT_GPA)[0]
    zones = [vub.ZONE_DESC.unpack_from(fe.mem, REPORT_GPA + vub.ZONE_REPORT_HDR +
                                       i * vub.ZONE_DESC.size) for i in range(min(n, nzones))]
    return res, n, zones


def run_zoned(k, tmp):

    # -- a host-managed zoned device -------------------------------------------
    fe = Frontend(["--set", f"cfg.zone_sectors={ZONE}", "--set", "cfg.max_open_zones=2",
                   "--set", "cfg.max_active_zones=3", "--set", "cfg.max_append_sectors=64",
                   "--set", "cfg.write_granularity=4096", "--set", "feat.discard=on"], tmp)
    offered, _ = fe.handshake()

    def zoned_config():
        data = fe.send(vub.GET_CONFIG, struct.pack("<III", 0, 96, 0) + bytes(96), reply=True)
        zoned = struct.unpack_from("<IIIIIB", data, 12 + 72)
        return (offered >> vub.FEATURES["zoned"] & 1 and
                zoned == (ZONE, 2, 3, 64, 4096, vub.Z_HM), f"{offered:#x} {zoned}")
    k.attempt("zoned-config", zoned_config)

    def report_empty():
        res, n, zones = zone_report(fe, 3 * ZONE + 5, 2)
        want = [(ZONE, z * ZONE, z * ZONE, vub.ZT_SWR, vub.ZS_EMPTY) for z in (3, 4)]
        full, nall, _ = zone_report(fe, 0, 16)
        return (res == (0, 64 + 2 * 64 + 1) and n == 2 and zones == want and
                full[0] == 0 and nall == CAPACITY // 512 // ZONE,
                f"{res} {n} {zones}; whole disk {full} {nall} zones")
    k.attempt("zone-report", report_empty)

    data = pattern(8192, 5)

    def write_at_wp():
        fe.mem[DATA_GPA:DATA_GPA + 8192] = data
        a = fe.request(vub.T_OUT, 0, [(DATA_GPA, 4096)], write=True)
        b = fe.request(vub.T_OUT, 8, [(DATA_GPA + 4096, 4096)], write=True)
        off = fe.request(vub.T_OUT, 24, [(DATA_GPA, 4096)], write=True)
        back = fe.request(vub.T_OUT, 0, [(DATA_GPA, 4096)], write=True)
        fe.mem[DATA_GPA:DATA_GPA + 8192] = bytes(8192)
        r = fe.request(vub.T_IN, 0, [(DATA_GPA, 8192)], write=False)
        _, _, zones = zone_report(fe, 0, 1)
        return (a == (0, 1) and b == (0, 1) and off == (vub.S_ZONE_UNALIGNED_WP, 1) and
                back == (vub.S_ZONE_UNALIGNED_WP, 1) and r == (0, 8193) and
                bytes(fe.mem[DATA_GPA:DATA_GPA + 8192]) == data and
                zones[0][2:] == (16, vub.ZT_SWR, vub.ZS_IOPEN),
                f"at wp {a} {b}, ahead {off}, behind {back}, read {r}, zone 0 {zones}")
    k.attempt("writes-only-at-write-pointer", write_at_wp)

    def append():
        fe.mem[DATA_GPA:DATA_GPA + 8192] = data
        a = zone_append(fe, ZONE, DATA_GPA, 4096)
        b = zone_append(fe, ZONE, DATA_GPA + 4096, 4096, padded=True)
        mid = zone_append(fe, ZONE + 8, DATA_GPA, 4096)
        big = zone_append(fe, ZONE, DATA_GPA, 65 * 512)
        fe.mem[DATA_GPA:DATA_GPA + 8192] = bytes(8192)
        r = fe.request(vub.T_IN, ZONE, [(DATA_GPA, 8192)], write=False)
        return (a == (0, 9, ZONE) and b == (0, 16, ZONE + 8) and
                mid[:2] == (vub.S_ZONE_INVALID_CMD, 1) and big[:2] == (vub.S_IOERR, 1) and
                r == (0, 8193) and bytes(fe.mem[DATA_GPA:DATA_GPA + 8192]) == data,
                f"appends {a}, padded in-header {b}, not at a zone start {mid}, beyond max_append {big}, "
                f"read {r}")
    k.attempt("zone-append-returns-sector", append)

    def limits():
        # zones 0 and 1 are implicitly open (the limit is 2)
        e = fe.request(vub.T_ZONE_OPEN, 2 * ZONE, [], write=True)
        w = fe.request(vub.T_OUT, 2 * ZONE, [(DATA_GPA, 4096)], write=True)
        _, _, zones = zone_report(fe, 0, 3)
        states = [z[4] for z in zones]
        a = fe.request(vub.T_OUT, 4 * ZONE, [(DATA_GPA, 4096)], write=True)
        return (e == (vub.S_ZONE_OPEN_RESOURCE, 1) and w == (0, 1) and
                states == [vub.ZS_CLOSED, vub.ZS_IOPEN, vub.ZS_IOPEN] and
                a == (vub.S_ZONE_ACTIVE_RESOURCE, 1),
                f"explicit open beyond max_open {e}, implicit open {w} -> states "
                f"{states}, a 4th active zone {a}")
    k.attempt("open-and-active-limits", limits)

    def manage():
        c = [fe.request(vub.T_ZONE_CLOSE, z * ZONE, [], write=True) for z in (1, 2)]
        o = fe.request(vub.T_ZONE_OPEN, 5 * ZONE, [], write=True)
        c5 = fe.request(vub.T_ZONE_CLOSE, 5 * ZONE, [], write=True)
        f = fe.request(vub.T_ZONE_FINISH, ZONE, [], write=True)
        full = fe.request(vub.T_OUT, ZONE + 16, [(DATA_GPA, 4096)], write=True)
        _, _, zones = zone_report(fe, 0, 6)
        states = [z[4] for z in zones]
        wp1 = zones[1][2]
        rs = fe.request(vub.T_ZONE_RESET, ZONE, [], write=True)
        bad = fe.request(vub.T_ZONE_RESET, ZONE + 8, [], write=True)
        fe.mem[DATA_GPA:DATA_GPA + 4096] = b"\xff" * 4096
        r = fe.request(vub.T_IN, ZONE, [(DATA_GPA, 4096)], write=False)
        zero = bytes(fe.mem[DATA_GPA:DATA_GPA + 4096]) == bytes(4096)
        _, _, z1 = zone_report(fe, ZONE, 1)
        # zones 0-2 are closed, and closed zones are active: no 4th
        ok = (c == [(0, 1), (0, 1)] and o == (vub.S_ZONE_ACTIVE_RESOURCE, 1) and c5 == (0, 1) and f == (0, 1) and
              full == (vub.S_ZONE_INVALID_CMD, 1) and
              states == [vub.ZS_CLOSED, vub.ZS_FULL, vub.ZS_CLOSED, vub.ZS_EMPTY,
                         vub.ZS_EMPTY, vub.ZS_EMPTY] and wp1 == 2 * ZONE and
              rs == (0, 1) and bad == (vub.S_ZONE_INVALID_CMD, 1) and r == (0, 4097) and
              zero and z1[0][2:] == (ZONE, vub.ZT_SWR, vub.ZS_EMPTY))
        return ok, (f"close {c}, open of a 4th active zone {o}, close of an empty one {c5}, finish {f}, write to full "
                    f"{full}, states {states} wp1 {wp1}, reset {rs}, reset mid-zone {bad}, "
                    f"read {r} zeroes {zero}, zone 1 {z1}")
    k.attempt("open-close-finish-reset", manage)

    def reset_all_and_discard():
        ra = fe.request(vub.T_ZONE_RESET_ALL, 0, [], write=True)
        _, _, zones = zone_report(fe, 0, 4)
        empty = all(z[4] == vub.ZS_EMPTY and z[2] == z[1] for z in zones)
        fe.mem[DATA_GPA + 65536:DATA_GPA + 65536 + 16] = struct.pack("<QII", 0, 8, 0)
        d = fe.request(vub.T_DISCARD, 0, [(DATA_GPA + 65536, 16)], write=True)
        return (ra == (0, 1) and empty and d == (vub.S_UNSUPP, 1),
                f"reset all {ra}, zones {zones}, discard {d}")
    k.attempt("reset-all-and-no-discard", reset_all_and_discard)

    # the append beyond max_append_sectors is the one violation
    rc, log = fe.finish()
    k.check(rc == 1 and log.count("VIOLATION") == 1 and
            "zone append of 65 sectors, max_append_sectors 64" in log and
            "zone_append=4" in log, "zoned-exit-counts-the-violation", log)

    # -- host-aware: a regular disk, no zone commands ----------------------------
    fe = Frontend(["--set", "cfg.model=2"], tmp)
    offered, _ = fe.handshake()

    def host_aware():
        res, _, _ = zone_report(fe, 0, 1)
        w = fe.request(vub.T_OUT, 24, [(DATA_GPA, 4096)], write=True)
        return (offered >> vub.FEATURES["zoned"] & 1 and res == (vub.S_UNSUPP, 1) and
                w == (0, 1), f"{offered:#x} report {res} write off any pointer {w}")
    k.attempt("host-aware-is-regular", host_aware)
    fe.finish()


if __name__ == "__main__":
    sys.exit(main())
