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
that its host-managed zoned emulation keeps write pointers, zone
states and the open and active limits as the virtio spec says, and that
its volatile write cache (--cache writeback) keeps writes from the image
until a flush, and that a power cut (SIGUSR2) leaves each piece of the
image at one of the versions it had since the last flush, all of them
(--cut-persist 1) or none (--cut-persist 0), then fails every request
(at once, or with --cut-within just before the request it drew),
and that a new back end on the image reads what was persisted.
A back end that fails here would make every guest test on it meaningless.

Each test class is one back end, started once for the class; its checks
run in the order of their numbers, each on the device the previous ones
left, and the last one ends the back end and judges its exit and log.
A failure shows the back end's log tail.

Output is TAP (pycotap); exit status 0 when everything passed.
  vhost_user_blk_test.py [CLASS[.test_NAME] ...]
"""

import mmap
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import pycotap

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = os.path.join(HERE, "vhost_user_blk.py")
sys.path.insert(0, HERE)
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

# Bounds of the waits on the back end (a Python process on a busy host):
# a reply or a used element or an interrupt that is due comes well within
# them; a wait for something that must NOT come is short (NEGATIVE_WAIT).
REPLY_TIMEOUT = 20
USED_TIMEOUT = 20
CALL_TIMEOUT = 20
LOG_TIMEOUT = 20
EXIT_TIMEOUT = 20
NEGATIVE_WAIT = 0.3
LOG_TAIL = 40


def tail(text, n=LOG_TAIL):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


class Frontend:
    """The QEMU side of the socket plus a driver's view of one ring."""

    def __init__(self, args, tmp):
        self.proc = self.sock = self.mem = None
        self.memfd = self.kick = self.call = None
        self.rc = None
        path = os.path.join(tmp, f"vu{len(os.listdir(tmp))}.sock")
        self.log_path = path + ".log"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(1)
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, BACKEND, "--listen-fd", str(listener.fileno()),
                     "--serial", SERIAL, "--size", str(CAPACITY)] + args,
                    stdout=log, stderr=subprocess.STDOUT, pass_fds=(listener.fileno(),))
        finally:
            listener.close()
        try:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
            self.sock.settimeout(REPLY_TIMEOUT)
            self.memfd = os.memfd_create("guest")
            os.ftruncate(self.memfd, MEM)
            self.mem = mmap.mmap(self.memfd, MEM)
            self.kick = os.eventfd(0, os.EFD_NONBLOCK)
            self.call = os.eventfd(0, os.EFD_NONBLOCK)
        except Exception:
            self.close()
            raise
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
        assert rreq == req and flags & vub.FLAG_REPLY, \
            f"reply to request {req}: request {rreq}, flags {flags:#x}"
        return self._recv(size)

    def _recv(self, n):
        data = b""
        while len(data) < n:
            try:
                more = self.sock.recv(n - len(data))
            except socket.timeout:
                raise AssertionError(f"no reply from the back end within {REPLY_TIMEOUT} s")
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

    def config(self, size=60):
        data = self.send(vub.GET_CONFIG, struct.pack("<III", 0, size, 0) + bytes(size),
                         reply=True)
        return data[12:]

    def finish(self):
        """Close the socket and wait for the back end to exit (killed
        after EXIT_TIMEOUT s); return (exit status, back-end log)."""
        self.sock.close()
        try:
            self.rc = self.proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.rc = f"still running {EXIT_TIMEOUT} s after the socket closed (killed)"
        return self.rc, self.log_text()

    def close(self):
        """Release everything, whatever state the checks left: the back
        end is killed if it still runs."""
        if self.sock:
            self.sock.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.mem:
            self.mem.close()
            self.mem = None
        for name in ("memfd", "kick", "call"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def log_text(self):
        """The back end's log so far."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, text, timeout=LOG_TIMEOUT):
        """Whether @text appears in the back end's log within @timeout s."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline:
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

    def wait_used(self, timeout=USED_TIMEOUT):
        """The next used element (id, len), or None if none came."""
        deadline = time.monotonic() + timeout
        while self.used_idx() == self.used_seen:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)
        elem = struct.unpack_from("<II", self.mem, USED_GPA + 4 + 8 * (self.used_seen % NUM))
        self.used_seen = (self.used_seen + 1) & 0xffff
        return elem

    def interrupted(self, timeout=CALL_TIMEOUT):
        """Whether the back end signalled the call eventfd within
        @timeout s (and clear it)."""
        ready, _, _ = select.select([self.call], [], [], timeout)
        if ready:
            os.eventfd_read(self.call)
        return bool(ready)

    def request(self, typ, sector, data_segs, write, indirect=False, head=0):
        """One request: header, data pieces [(gpa, len)], status, in the
        chain at descriptor @head; returns (status, used len).  No answer
        within USED_TIMEOUT s, or a used id other than @head, fails."""
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
            raise AssertionError(f"request type {typ} sector {sector} at head {head}: "
                                 f"no used element within {USED_TIMEOUT} s")
        assert used[0] == head, f"used id {used[0]}, want {head}"
        return self.mem[STATUS_GPA], used[1]

    def read_mem(self, gpa, n):
        return bytes(self.mem[gpa:gpa + n])


def pattern(n, seed):
    return bytes((i * 7 + seed + (i >> 9)) & 0xff for i in range(n))


class Device(unittest.TestCase):
    """One back end (started with ARGS) for all the checks of a class."""

    ARGS = ()

    @classmethod
    def setUpClass(cls):
        # A set-up that fails fails each test of the class, with the reason
        # (pycotap would not print an exception raised here).
        cls.broken = None
        tmp = tempfile.TemporaryDirectory(prefix="vhost-unit-")
        cls.addClassCleanup(tmp.cleanup)
        try:
            cls.fe = None
            cls.tmp = tmp.name
            cls.fe = Frontend([a.replace("{tmp}", tmp.name) for a in cls.ARGS], tmp.name)
            cls.addClassCleanup(cls.fe.close)
            cls.offered, cls.proto = cls.fe.handshake()
        except Exception as exc:
            cls.broken = f"back end set-up failed: {type(exc).__name__}: {exc}"
            if cls.fe:
                cls.broken += f"\n--- back end log:\n{tail(cls.fe.log_text())}"

    def setUp(self):
        if self.broken:
            self.fail(self.broken)

    def why(self, text):
        """@text and the back end's log tail, for a failure's message."""
        return f"{text}\n--- back end log (last {LOG_TAIL} lines):\n{tail(self.fe.log_text())}"

    def assertBytes(self, got, want, what):
        """@got equals @want, else the first differing offset."""
        if got != want:
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                         min(len(got), len(want)))
            self.fail(self.why(f"{what}: {len(got)} bytes differ from the {len(want)} "
                               f"expected from offset {first}"))


DATA = pattern(16384, 3)


class SaneDevice(Device):
    """A sane device with discard and write-zeroes."""

    ARGS = ("--set", "cfg.seg_max=8", "--set", "cfg.size_max=65536",
            "--set", "cfg.max_discard_sectors=0", "--set", "cfg.max_discard_seg=4",
            "--set", "cfg.max_write_zeroes_sectors=2048",
            "--set", "cfg.max_write_zeroes_seg=1")

    def test_01_handshake_features(self):
        want = ["version_1", "indirect_desc", "event_idx", "flush", "seg_max",
                "size_max", "blk_size", "discard", "write_zeroes"]
        missing = [f for f in want if not self.offered >> vub.FEATURES[f] & 1]
        msg = self.why(f"features {self.offered:#x} protocol {self.proto:#x}")
        self.assertEqual(missing, [], msg)
        self.assertTrue(self.offered >> vub.F_PROTOCOL_FEATURES & 1,
                        "no VHOST_USER_F_PROTOCOL_FEATURES; " + msg)
        self.assertTrue(self.proto >> vub.PROTO_F_CONFIG & 1, "no CONFIG protocol feature; " + msg)
        self.assertFalse(self.offered >> vub.FEATURES["mq"] & 1, "mq offered; " + msg)

    def test_02_get_config(self):
        cfg = self.fe.config()
        cap, size_max, seg_max = struct.unpack_from("<QII", cfg)
        blk = struct.unpack_from("<I", cfg, 20)[0]
        dsec, dseg = struct.unpack_from("<II", cfg, 36)
        self.assertEqual((cap, size_max, seg_max, blk, dsec, dseg),
                         (CAPACITY // 512, 65536, 8, 512, 0, 4),
                         self.why("(capacity, size_max, seg_max, blk_size, max_discard_sectors, "
                                  f"max_discard_seg) of config {cfg.hex()}"))

    def test_03_write_direct_chain(self):
        fe = self.fe
        fe.mem[DATA_GPA:DATA_GPA + 16384] = DATA
        res = fe.request(vub.T_OUT, 8, [(DATA_GPA, 4096), (DATA_GPA + 4096, 8192),
                                        (DATA_GPA + 12288, 4096)], write=True)
        self.assertEqual(res, (0, 1), self.why("status/used len of a 3-piece write"))

    def test_04_read_indirect_table(self):
        fe = self.fe
        fe.mem[DATA_GPA:DATA_GPA + 16384] = bytes(16384)
        res = fe.request(vub.T_IN, 8, [(DATA_GPA, 10240), (DATA_GPA + 10240, 6144)],
                         write=False, indirect=True)
        self.assertEqual(res, (0, 16385), self.why("status/used len of an indirect read"))
        self.assertBytes(fe.read_mem(DATA_GPA, 16384), DATA,
                         "indirect read of what test_03 wrote")

    def test_05_buffer_across_regions(self):
        fe = self.fe
        other = pattern(8192, 11)
        fe.mem[CROSS_GPA:CROSS_GPA + 8192] = other
        w = fe.request(vub.T_OUT, 1000, [(CROSS_GPA, 8192)], write=True)
        fe.mem[CROSS_GPA:CROSS_GPA + 8192] = bytes(8192)
        r = fe.request(vub.T_IN, 1000, [(CROSS_GPA, 8192)], write=False)
        msg = self.why(f"write {w} read {r}")
        self.assertEqual(w, (0, 1), msg)
        self.assertEqual(r, (0, 8193), msg)
        self.assertBytes(fe.read_mem(CROSS_GPA, 8192), other, "read across the regions")

    def test_06_flush_and_get_id(self):
        fe = self.fe
        f = fe.request(vub.T_FLUSH, 0, [], write=True)
        fe.mem[ID_GPA:ID_GPA + 20] = b"\xff" * 20
        i = fe.request(vub.T_GET_ID, 0, [(ID_GPA, 20)], write=False)
        ident = fe.read_mem(ID_GPA, 20)
        msg = self.why(f"flush {f} get-id {i} {ident!r}")
        self.assertEqual(f, (0, 1), msg)
        self.assertEqual(i, (0, 21), msg)
        self.assertEqual(ident, SERIAL.encode().ljust(20, b"\0"), msg)

    def test_07_beyond_capacity_and_unknown_type(self):
        fe = self.fe
        r = fe.request(vub.T_IN, CAPACITY // 512 - 4, [(DATA_GPA, 4096)], write=False)
        u = fe.request(99, 0, [], write=True)
        msg = self.why(f"read beyond capacity {r}, type 99 {u}")
        self.assertEqual(r, (vub.S_IOERR, 1), msg)
        self.assertEqual(u, (vub.S_UNSUPP, 1), msg)

    def test_08_discard_and_write_zeroes(self):
        fe = self.fe
        ranges = struct.pack("<QII", 8, 8, 0) + struct.pack("<QII", 24, 4, 0)
        fe.mem[DATA_GPA + 65536:DATA_GPA + 65536 + 32] = ranges
        d = fe.request(vub.T_DISCARD, 0, [(DATA_GPA + 65536, 32)], write=True)
        fe.mem[DATA_GPA:DATA_GPA + 16384] = b"\xff" * 16384
        r = fe.request(vub.T_IN, 8, [(DATA_GPA, 16384)], write=False)
        back = fe.read_mem(DATA_GPA, 16384)
        want = bytes(4096) + DATA[4096:8192] + bytes(2048) + DATA[10240:]
        fe.mem[DATA_GPA + 65536:DATA_GPA + 65536 + 16] = struct.pack("<QII", 8, 8, 1)
        bad = fe.request(vub.T_DISCARD, 0, [(DATA_GPA + 65536, 16)], write=True)
        fe.mem[DATA_GPA + 65536:DATA_GPA + 65536 + 16] = struct.pack("<QII", 16, 8, 1)
        z = fe.request(vub.T_WRITE_ZEROES, 0, [(DATA_GPA + 65536, 16)], write=True)
        r2 = fe.request(vub.T_IN, 16, [(DATA_GPA, 4096)], write=False)
        zeroed = fe.read_mem(DATA_GPA, 4096)
        msg = self.why(f"discard {d} read {r} match {back == want} unmap-discard {bad} "
                       f"write-zeroes {z} read {r2} zeroed {zeroed == bytes(4096)}")
        self.assertEqual(d, (0, 1), msg)
        self.assertEqual(r, (0, 16385), msg)
        self.assertBytes(back, want, "read after discarding two ranges")
        self.assertEqual(bad, (vub.S_UNSUPP, 1), msg)
        self.assertEqual(z, (0, 1), msg)
        self.assertEqual(r2, (0, 4097), msg)
        self.assertBytes(zeroed, bytes(4096), "read after write-zeroes")

    def test_09_event_idx_notifications(self):
        fe = self.fe
        fe.interrupted(0)
        # used_event = the index the next used entry gets: interrupt
        struct.pack_into("<H", fe.mem, AVAIL_GPA + 4 + 2 * NUM, fe.used_seen)
        a = fe.request(vub.T_FLUSH, 0, [], write=True)
        first = fe.interrupted()
        # used_event well ahead: no interrupt for one more entry
        struct.pack_into("<H", fe.mem, AVAIL_GPA + 4 + 2 * NUM, (fe.used_seen + 5) & 0xffff)
        b = fe.request(vub.T_FLUSH, 0, [], write=True)
        second = fe.interrupted(NEGATIVE_WAIT)
        avail_event = struct.unpack_from("<H", fe.mem, USED_GPA + 4 + 8 * NUM)[0]
        msg = self.why(f"flushes {a} {b}, interrupt when due {first} (waited up to "
                       f"{CALL_TIMEOUT} s), when suppressed {second}, "
                       f"avail_event {avail_event} (avail idx {fe.avail_idx})")
        self.assertEqual((a, b), ((0, 1), (0, 1)), msg)
        self.assertTrue(first, msg)
        self.assertFalse(second, msg)
        self.assertEqual(avail_event, fe.avail_idx, msg)

    def test_10_get_vring_base(self):
        base = self.fe.send(vub.GET_VRING_BASE, struct.pack("<II", 0, 0), reply=True)
        index, num = struct.unpack("<II", base)
        self.assertEqual((index, num), (0, self.fe.avail_idx),
                         self.why("GET_VRING_BASE (index, num), want the avail idx"))

    def test_11_clean_exit_with_summary(self):
        rc, log = self.fe.finish()
        msg = f"exit {rc}\n--- back end log:\n{tail(log)}"
        self.assertEqual(rc, 0, msg)
        self.assertIn("indirect=1 ", log, msg)
        self.assertNotIn("VIOLATION", log, msg)


class AbsurdDevice(Device):
    """Absurd values travel as given."""

    ARGS = ("--set", "cfg.seg_max=0", "--set", "cfg.blk_size=1000",
            "--set", "cfg.physical_block_exp=255", "--set", "cfg.num_queues=0",
            "--set", "cfg.opt_io_size=4294967295", "--set", "feat.event_idx=off")

    def test_1_absurd_config_passes_through(self):
        cfg = self.fe.config()
        seg_max, blk, pbe = struct.unpack_from("<I", cfg, 12)[0], \
            struct.unpack_from("<I", cfg, 20)[0], cfg[24]
        nq, opt = struct.unpack_from("<H", cfg, 34)[0], struct.unpack_from("<I", cfg, 28)[0]
        msg = self.why(f"config {cfg.hex()} features {self.offered:#x}")
        self.assertEqual((seg_max, blk, pbe, nq, opt), (0, 1000, 255, 0, 0xffffffff),
                         "(seg_max, blk_size, physical_block_exp, num_queues, opt_io_size) "
                         + msg)
        for f in ("seg_max", "blk_size", "topology", "mq"):
            self.assertTrue(self.offered >> vub.FEATURES[f] & 1, f"{f} not offered; {msg}")
        self.assertFalse(self.offered >> vub.FEATURES["event_idx"] & 1,
                         f"event_idx offered; {msg}")

    def test_2_no_interrupt_flag(self):
        fe = self.fe
        fe.interrupted(0)
        struct.pack_into("<H", fe.mem, AVAIL_GPA, vub.AVAIL_F_NO_INTERRUPT)
        a = fe.request(vub.T_FLUSH, 0, [], write=True)
        quiet = not fe.interrupted(NEGATIVE_WAIT)
        struct.pack_into("<H", fe.mem, AVAIL_GPA, 0)
        b = fe.request(vub.T_FLUSH, 0, [], write=True)
        loud = fe.interrupted()
        msg = self.why(f"flushes {a} {b}, no interrupt with the flag {quiet}, "
                       f"interrupt without it {loud} (waited up to {CALL_TIMEOUT} s)")
        self.assertEqual((a, b), ((0, 1), (0, 1)), msg)
        self.assertTrue(quiet, msg)
        self.assertTrue(loud, msg)

    def test_3_set_config_wce(self):
        self.fe.send(vub.SET_CONFIG, struct.pack("<III", 32, 1, 0) + b"\0")
        self.assertEqual(self.fe.config()[32], 0, self.why("wce still set after SET_CONFIG"))

    def test_4_absurd_device_clean_exit(self):
        rc, log = self.fe.finish()
        self.assertEqual(rc, 0, f"exit {rc}\n--- back end log:\n{tail(log)}")


class Refusals(Device):
    """What the back end must refuse."""

    ARGS = ("--set", "cfg.seg_max=2", "--set", "cfg.blk_size=4096")

    def test_1_limits_enforced(self):
        fe = self.fe
        r = fe.request(vub.T_OUT, 0, [(DATA_GPA, 4096), (DATA_GPA + 4096, 4096),
                                      (DATA_GPA + 8192, 4096)], write=True)
        a = fe.request(vub.T_OUT, 1, [(DATA_GPA, 4096)], write=True)
        ok = fe.request(vub.T_OUT, 8, [(DATA_GPA, 4096), (DATA_GPA + 4096, 4096)],
                        write=True)
        msg = self.why(f"3 segments {r}, unaligned {a}, 2 aligned segments {ok}")
        self.assertEqual(r, (vub.S_IOERR, 1), msg)
        self.assertEqual(a, (vub.S_IOERR, 1), msg)
        self.assertEqual(ok, (0, 1), msg)

    def test_2_malformed_chain_stops_queue(self):
        fe = self.fe
        fe.desc(DESC_GPA, 0, HDR_GPA, 16, vub.DESC_F_NEXT, 1)
        fe.desc(DESC_GPA, 1, DATA_GPA, 512, vub.DESC_F_NEXT, 0)     # loops to 0
        fe.submit(0)
        used = fe.wait_used(NEGATIVE_WAIT)
        # the back end still answers on its socket
        base = fe.send(vub.GET_VRING_BASE, struct.pack("<II", 0, 0), reply=True)
        self.assertIsNone(used, self.why("a used element for a looping chain"))
        self.assertIsNotNone(base, self.why("no GET_VRING_BASE reply"))

    def test_3_violations_fail_the_exit_status(self):
        rc, log = self.fe.finish()
        msg = f"exit {rc}\n--- back end log:\n{tail(log)}"
        self.assertEqual(rc, 1, msg)
        self.assertEqual(log.count("VIOLATION"), 3, msg)
        self.assertIn("descriptor chain loops", log, msg)


class Fault(Device):
    """A broken device on demand: SIGUSR1."""

    def test_1_sigusr1_arms_a_fault(self):
        fe = self.fe
        before = [fe.request(vub.T_FLUSH, 0, [], write=True, head=h) for h in (3, 9)]
        early = "fault:" in fe.log_text()
        os.kill(fe.proc.pid, signal.SIGUSR1)
        armed = fe.wait_log("fault: armed corrupt-used-id")
        msg = self.why(f"true ids before the signal: {before}, fault line before it {early}, "
                       f"armed line within {LOG_TIMEOUT} s {armed}")
        self.assertEqual(before, [(0, 1), (0, 1)], msg)
        self.assertFalse(early, msg)
        self.assertTrue(armed, msg)

    def test_2_fault_corrupts_one_used_id(self):
        fe = self.fe
        # The next element carries an out-of-range id; the request is served.
        struct.pack_into("<IIQ", fe.mem, HDR_GPA, vub.T_FLUSH, 0, 0)
        fe.mem[STATUS_GPA] = 0xff
        fe.chain([(HDR_GPA, 16, False), (STATUS_GPA, 1, True)], first=5)
        fe.submit(5)
        bad = fe.wait_used()
        self.assertIsNotNone(bad, self.why(f"no used element within {USED_TIMEOUT} s"))
        status = fe.mem[STATUS_GPA]
        # Then true ids again, the same head included.
        after = [fe.request(vub.T_FLUSH, 0, [], write=True, head=h) for h in (5, 2)]
        log = fe.log_text()
        msg = self.why(f"faulted element {bad} (queue size {NUM}) status {status}, "
                       f"then {after}")
        self.assertGreaterEqual(bad[0], NUM, msg)
        self.assertEqual((bad[1], status), (1, 0), msg)
        self.assertEqual(after, [(0, 1), (0, 1)], msg)
        self.assertIn(f"fault: wrote used id {bad[0]} on queue 0", log, msg)
        self.assertEqual(log.count("fault: wrote"), 1, msg)

    def test_3_fault_counted_not_failed(self):
        rc, log = self.fe.finish()
        msg = f"exit {rc}\n--- back end log:\n{tail(log)}"
        self.assertEqual(rc, 0, msg)
        self.assertIn("faults=1", log, msg)
        self.assertNotIn("VIOLATION", log, msg)
        self.assertNotIn("error:", log, msg)


ZONE = 2048                 # sectors per zone of the zoned device
APPEND_GPA = 0xb000         # a zone append's sector in the in-header
REPORT_GPA = 0x20000


def zone_append(fe, zone_start, gpa, nbytes, padded=False):
    """A zone append of @nbytes at @gpa to the zone at @zone_start, the
    sector and the status in two descriptors (the spec's 9 bytes), or with
    @padded in one of 16 (the in-tree driver's): (status, used len, sector
    written).  No answer within USED_TIMEOUT s fails."""
    struct.pack_into("<IIQ", fe.mem, HDR_GPA, vub.T_ZONE_APPEND, 0, zone_start)
    fe.mem[APPEND_GPA:APPEND_GPA + 16] = b"\xee" * 16
    fe.mem[STATUS_GPA] = 0xff
    inhdr = [(APPEND_GPA, 16, True)] if padded else \
        [(APPEND_GPA, 8, True), (STATUS_GPA, 1, True)]
    fe.chain([(HDR_GPA, 16, False), (gpa, nbytes, False)] + inhdr)
    fe.submit(0)
    used = fe.wait_used()
    if used is None:
        raise AssertionError(f"zone append at {zone_start}: no used element "
                             f"within {USED_TIMEOUT} s")
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


ZDATA = pattern(8192, 5)


class ZonedDevice(Device):
    """A host-managed zoned device."""

    ARGS = ("--set", f"cfg.zone_sectors={ZONE}", "--set", "cfg.max_open_zones=2",
            "--set", "cfg.max_active_zones=3", "--set", "cfg.max_append_sectors=64",
            "--set", "cfg.write_granularity=4096", "--set", "feat.discard=on")

    def test_1_zoned_config(self):
        zoned = struct.unpack_from("<IIIIIB", self.fe.config(96), 72)
        msg = self.why(f"features {self.offered:#x}, (zone_sectors, max_open_zones, "
                       f"max_active_zones, max_append_sectors, write_granularity, model) "
                       f"{zoned}")
        self.assertTrue(self.offered >> vub.FEATURES["zoned"] & 1, msg)
        self.assertEqual(zoned, (ZONE, 2, 3, 64, 4096, vub.Z_HM), msg)

    def test_2_zone_report(self):
        res, n, zones = zone_report(self.fe, 3 * ZONE + 5, 2)
        want = [(ZONE, z * ZONE, z * ZONE, vub.ZT_SWR, vub.ZS_EMPTY) for z in (3, 4)]
        full, nall, _ = zone_report(self.fe, 0, 16)
        msg = self.why(f"from zone 3: {res} {n} {zones}; whole disk {full} {nall} zones")
        self.assertEqual((res, n), ((0, 64 + 2 * 64 + 1), 2), msg)
        self.assertEqual(zones, want, msg)
        self.assertEqual(full[0], 0, msg)
        self.assertEqual(nall, CAPACITY // 512 // ZONE, msg)

    def test_3_writes_only_at_write_pointer(self):
        fe = self.fe
        fe.mem[DATA_GPA:DATA_GPA + 8192] = ZDATA
        a = fe.request(vub.T_OUT, 0, [(DATA_GPA, 4096)], write=True)
        b = fe.request(vub.T_OUT, 8, [(DATA_GPA + 4096, 4096)], write=True)
        off = fe.request(vub.T_OUT, 24, [(DATA_GPA, 4096)], write=True)
        back = fe.request(vub.T_OUT, 0, [(DATA_GPA, 4096)], write=True)
        fe.mem[DATA_GPA:DATA_GPA + 8192] = bytes(8192)
        r = fe.request(vub.T_IN, 0, [(DATA_GPA, 8192)], write=False)
        got = fe.read_mem(DATA_GPA, 8192)
        _, _, zones = zone_report(fe, 0, 1)
        msg = self.why(f"at wp {a} {b}, ahead {off}, behind {back}, read {r}, zone 0 {zones}")
        self.assertEqual((a, b), ((0, 1), (0, 1)), msg)
        self.assertEqual((off, back), ((vub.S_ZONE_UNALIGNED_WP, 1),) * 2, msg)
        self.assertEqual(r, (0, 8193), msg)
        self.assertBytes(got, ZDATA, "read of zone 0")
        self.assertEqual(zones[0][2:], (16, vub.ZT_SWR, vub.ZS_IOPEN), msg)

    def test_4_zone_append_returns_sector(self):
        fe = self.fe
        fe.mem[DATA_GPA:DATA_GPA + 8192] = ZDATA
        a = zone_append(fe, ZONE, DATA_GPA, 4096)
        b = zone_append(fe, ZONE, DATA_GPA + 4096, 4096, padded=True)
        mid = zone_append(fe, ZONE + 8, DATA_GPA, 4096)
        big = zone_append(fe, ZONE, DATA_GPA, 65 * 512)
        fe.mem[DATA_GPA:DATA_GPA + 8192] = bytes(8192)
        r = fe.request(vub.T_IN, ZONE, [(DATA_GPA, 8192)], write=False)
        got = fe.read_mem(DATA_GPA, 8192)
        msg = self.why(f"appends {a}, padded in-header {b}, not at a zone start {mid}, "
                       f"beyond max_append {big}, read {r}")
        self.assertEqual(a, (0, 9, ZONE), msg)
        self.assertEqual(b, (0, 16, ZONE + 8), msg)
        self.assertEqual(mid[:2], (vub.S_ZONE_INVALID_CMD, 1), msg)
        self.assertEqual(big[:2], (vub.S_IOERR, 1), msg)
        self.assertEqual(r, (0, 8193), msg)
        self.assertBytes(got, ZDATA, "read of the appended data")

    def test_5_open_and_active_limits(self):
        fe = self.fe
        # zones 0 and 1 are implicitly open (the limit is 2)
        e = fe.request(vub.T_ZONE_OPEN, 2 * ZONE, [], write=True)
        w = fe.request(vub.T_OUT, 2 * ZONE, [(DATA_GPA, 4096)], write=True)
        _, _, zones = zone_report(fe, 0, 3)
        states = [z[4] for z in zones]
        a = fe.request(vub.T_OUT, 4 * ZONE, [(DATA_GPA, 4096)], write=True)
        msg = self.why(f"explicit open beyond max_open {e}, implicit open {w} -> states "
                       f"{states}, a 4th active zone {a}")
        self.assertEqual(e, (vub.S_ZONE_OPEN_RESOURCE, 1), msg)
        self.assertEqual(w, (0, 1), msg)
        self.assertEqual(states, [vub.ZS_CLOSED, vub.ZS_IOPEN, vub.ZS_IOPEN], msg)
        self.assertEqual(a, (vub.S_ZONE_ACTIVE_RESOURCE, 1), msg)

    def test_6_open_close_finish_reset(self):
        fe = self.fe
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
        zero = fe.read_mem(DATA_GPA, 4096)
        _, _, z1 = zone_report(fe, ZONE, 1)
        msg = self.why(f"close {c}, open of a 4th active zone {o}, close of an empty one {c5}, "
                       f"finish {f}, write to full {full}, states {states} wp1 {wp1}, "
                       f"reset {rs}, reset mid-zone {bad}, read {r}, zone 1 {z1}")
        self.assertEqual(c, [(0, 1), (0, 1)], msg)
        # zones 0-2 are closed, and closed zones are active: no 4th
        self.assertEqual(o, (vub.S_ZONE_ACTIVE_RESOURCE, 1), msg)
        self.assertEqual((c5, f), ((0, 1), (0, 1)), msg)
        self.assertEqual(full, (vub.S_ZONE_INVALID_CMD, 1), msg)
        self.assertEqual(states, [vub.ZS_CLOSED, vub.ZS_FULL, vub.ZS_CLOSED, vub.ZS_EMPTY,
                                  vub.ZS_EMPTY, vub.ZS_EMPTY], msg)
        self.assertEqual(wp1, 2 * ZONE, msg)
        self.assertEqual(rs, (0, 1), msg)
        self.assertEqual(bad, (vub.S_ZONE_INVALID_CMD, 1), msg)
        self.assertEqual(r, (0, 4097), msg)
        self.assertBytes(zero, bytes(4096), "read of a reset zone")
        self.assertEqual(z1[0][2:], (ZONE, vub.ZT_SWR, vub.ZS_EMPTY), msg)

    def test_7_reset_all_and_no_discard(self):
        fe = self.fe
        ra = fe.request(vub.T_ZONE_RESET_ALL, 0, [], write=True)
        _, _, zones = zone_report(fe, 0, 4)
        fe.mem[DATA_GPA + 65536:DATA_GPA + 65536 + 16] = struct.pack("<QII", 0, 8, 0)
        d = fe.request(vub.T_DISCARD, 0, [(DATA_GPA + 65536, 16)], write=True)
        msg = self.why(f"reset all {ra}, zones {zones}, discard {d}")
        self.assertEqual(ra, (0, 1), msg)
        self.assertEqual(len(zones), 4, msg)
        for z in zones:
            self.assertEqual((z[4], z[2]), (vub.ZS_EMPTY, z[1]), msg)
        self.assertEqual(d, (vub.S_UNSUPP, 1), msg)

    def test_8_zoned_exit_counts_the_violation(self):
        # the append beyond max_append_sectors (test_4) is the one violation
        rc, log = self.fe.finish()
        msg = f"exit {rc}\n--- back end log:\n{tail(log)}"
        self.assertEqual(rc, 1, msg)
        self.assertEqual(log.count("VIOLATION"), 1, msg)
        self.assertIn("zone append of 65 sectors, max_append_sectors 64", log, msg)
        self.assertIn("zone_append=4", log, msg)


IMG = "{tmp}/wb.img"
CUT_TIMEOUT = 20


def image(path, sector, nbytes):
    """@nbytes of the image file @path at @sector."""
    with open(path, "rb") as f:
        f.seek(sector * 512)
        return f.read(nbytes)


class CacheDevice(Device):
    """Helpers for the back ends with a volatile write cache."""

    def img(self, sector, nbytes):
        return image(IMG.replace("{tmp}", self.tmp), sector, nbytes)

    def write(self, sector, data):
        self.fe.mem[DATA_GPA:DATA_GPA + len(data)] = data
        return self.fe.request(vub.T_OUT, sector, [(DATA_GPA, len(data))], write=True)

    def read(self, sector, nbytes):
        self.fe.mem[DATA_GPA:DATA_GPA + nbytes] = b"\xee" * nbytes
        res = self.fe.request(vub.T_IN, sector, [(DATA_GPA, nbytes)], write=False)
        return res, self.fe.read_mem(DATA_GPA, nbytes)

    def cut(self, n=1):
        """SIGUSR2, and the log line of power cut @n."""
        os.kill(self.fe.proc.pid, signal.SIGUSR2)
        self.assertTrue(self.fe.wait_log(f"fault: power cut {n} ", CUT_TIMEOUT),
                        self.why(f"no 'fault: power cut {n}' within {CUT_TIMEOUT} s"))

    def reopen(self):
        """A new back end on the same image (the old one's socket is
        closed first): what survived the cut."""
        fe = Frontend(["--cache", "writeback", "--image", IMG.replace("{tmp}", self.tmp)],
                      self.tmp)
        self.addCleanup(fe.close)
        fe.handshake()
        return fe


OLD = pattern(32768, 21)
NEW = pattern(32768, 77)
NEWER = pattern(8192, 5)


class WriteBackCache(CacheDevice):
    """Writes stay in the cache until a flush; a cut persists a random
    part of them, then the disk is off."""

    ARGS = ("--cache", "writeback", "--image", IMG, "--seed", "12345",
            "--cut-persist", "0.5")

    def test_1_offers_a_write_back_cache(self):
        cfg = self.fe.config()
        msg = self.why(f"features {self.offered:#x} config {cfg.hex()}")
        self.assertTrue(self.offered >> vub.FEATURES["flush"] & 1, msg)
        self.assertTrue(self.offered >> vub.FEATURES["config_wce"] & 1, msg)
        self.assertEqual(cfg[32], 1, "wce " + msg)
        self.assertIn("power cut seed 12345", self.fe.log_text(), msg)

    def test_2_write_stays_in_the_cache(self):
        w = self.write(64, OLD)
        r, back = self.read(64, len(OLD))
        self.assertEqual((w, r), ((0, 1), (0, len(OLD) + 1)), self.why("write, read"))
        self.assertBytes(back, OLD, "read of a cached write")
        self.assertBytes(self.img(64, len(OLD)), bytes(len(OLD)),
                         "image before a flush (must still be zeroes)")

    def test_3_flush_persists(self):
        f = self.fe.request(vub.T_FLUSH, 0, [], write=True)
        self.assertEqual(f, (0, 1), self.why("flush"))
        self.assertBytes(self.img(64, len(OLD)), OLD, "image after the flush")

    def test_4_cut_persists_a_subset_of_versions(self):
        # Two unflushed versions over the flushed one, the second one off
        # the 4 KiB alignment (pieces of 3.5 and 0.5 KiB at its ends).
        w1 = self.write(64, NEW)
        w2 = self.write(64 + 9, NEWER)
        self.assertEqual((w1, w2), ((0, 1), (0, 1)), self.why("unflushed writes"))
        self.cut()
        got = self.img(64, len(OLD))
        newer = NEW[:9 * 512] + NEWER + NEW[9 * 512 + len(NEWER):]
        kinds = set()
        for off in range(0, len(OLD), 512):
            piece = got[off:off + 512]
            versions = {"old": OLD[off:off + 512], "new": NEW[off:off + 512],
                        "newer": newer[off:off + 512]}
            which = [k for k, v in versions.items() if v == piece]
            self.assertTrue(which, self.why(f"sector {64 + off // 512} after the cut is "
                                            "none of its versions"))
            kinds.add(which[-1])
        for blk in range(0, len(OLD), 4096):
            # A 4 KiB piece of a write is persisted or dropped whole: where
            # the second write did not reach, all old or all new.
            if blk + 4096 > 9 * 512 and blk < 9 * 512 + len(NEWER):
                continue
            olds = sum(got[o:o + 512] == OLD[o:o + 512] for o in range(blk, blk + 4096, 512))
            self.assertIn(olds, (0, 8), self.why(f"4 KiB piece at {blk} torn: {olds} "
                                                 "old sectors of 8"))
        self.assertTrue(len(kinds) > 1, self.why(f"seed 12345, persist 0.5: every sector "
                                                 f"{kinds}"))

    def test_5_off_after_the_cut(self):
        before = self.img(0, 65536)
        w = self.write(0, NEW)
        r, _ = self.read(64, 4096)
        f = self.fe.request(vub.T_FLUSH, 0, [], write=True)
        msg = self.why(f"write {w} read {r} flush {f} after the cut")
        self.assertEqual((w, r[0], f), ((vub.S_IOERR, 1), vub.S_IOERR, (vub.S_IOERR, 1)), msg)
        self.assertBytes(self.img(0, 65536), before, "image after requests to an off disk")

    def test_6_cut_counted_not_failed(self):
        rc, log = self.fe.finish()
        msg = f"exit {rc}\n--- back end log:\n{tail(log)}"
        self.assertEqual(rc, 0, msg)
        self.assertIn("power_cuts=1 failed_after_cut=3", log, msg)
        self.assertNotIn("VIOLATION", log, msg)
        self.assertNotIn("error:", log, msg)

    def test_7_new_back_end_reads_the_image(self):
        fe = self.reopen()
        want = self.img(64, len(OLD))
        fe.mem[DATA_GPA:DATA_GPA + len(OLD)] = bytes(len(OLD))
        r = fe.request(vub.T_IN, 64, [(DATA_GPA, len(OLD))], write=False)
        self.assertEqual(r, (0, len(OLD) + 1), self.why("read on the new back end"))
        self.assertBytes(fe.read_mem(DATA_GPA, len(OLD)), want,
                         "new back end's read of what the cut left")


class CutDropsAll(CacheDevice):
    """--cut-persist 0: the image is what was flushed, to the byte."""

    ARGS = ("--cache", "writeback", "--image", IMG, "--cut-persist", "0")

    def test_1_only_flushed_data_survives(self):
        a = self.write(0, OLD)
        f = self.fe.request(vub.T_FLUSH, 0, [], write=True)
        b = self.write(0, NEW[:16384])
        c = self.write(200, NEW)
        self.assertEqual((a, f, b, c), ((0, 1),) * 4, self.why("writes and flush"))
        self.cut()
        self.assertBytes(self.img(0, len(OLD)), OLD, "flushed data after the cut")
        self.assertBytes(self.img(200, len(NEW)), bytes(len(NEW)),
                         "never flushed data after the cut (must be zeroes)")
        self.assertIn("power_cuts=1", self.fe.finish()[1])


class CutKeepsAll(CacheDevice):
    """--cut-persist 1: every write reaches the image, the newest last."""

    ARGS = ("--cache", "writeback", "--image", IMG, "--cut-persist", "1")

    def test_1_every_write_survives(self):
        a = self.write(0, OLD)
        b = self.write(8, NEWER)
        self.assertEqual((a, b), ((0, 1),) * 2, self.why("writes"))
        self.cut()
        want = OLD[:4096] + NEWER + OLD[4096 + len(NEWER):]
        self.assertBytes(self.img(0, len(OLD)), want, "image after the cut")


class CutWithin(CacheDevice):
    """--cut-within: the power goes just before one of the next requests,
    the one the armed line names; with none coming, CUT_IDLE s later."""

    ARGS = ("--cache", "writeback", "--image", IMG, "--cut-persist", "0",
            "--cut-within", "5", "--seed", "99")

    def test_1_cut_lands_on_the_named_request(self):
        os.kill(self.fe.proc.pid, signal.SIGUSR2)
        self.assertTrue(self.fe.wait_log("fault: power cut armed", CUT_TIMEOUT),
                        self.why("no 'power cut armed' line"))
        n = int(re.search(r"before request (\d+) from now", self.fe.log_text()).group(1))
        got = [self.write(8 * i, NEWER) for i in range(n + 1)]
        want = [(0, 1)] * (n - 1) + [(vub.S_IOERR, 1)] * 2
        self.assertEqual(got, want, self.why(f"requests after arming (cut before {n})"))
        self.assertIn("fault: power cut 1 ", self.fe.log_text())

    def test_2_idle_cut(self):
        fe = Frontend(["--cache", "writeback", "--image", IMG.replace("{tmp}", self.tmp),
                       "--cut-within", "65536"], self.tmp)
        self.addCleanup(fe.close)
        fe.handshake()
        os.kill(fe.proc.pid, signal.SIGUSR2)
        self.assertTrue(fe.wait_log("fault: power cut 1 ", CUT_TIMEOUT),
                        f"no cut {CUT_TIMEOUT} s after arming, with no request\n"
                        f"{tail(fe.log_text())}")


class WriteThrough(CacheDevice):
    """wce set to 0: the cache is written out, and writes go through."""

    ARGS = ("--cache", "writeback", "--image", IMG, "--cut-persist", "0")

    def test_1_wce_off_writes_through(self):
        a = self.write(0, OLD)
        self.fe.send(vub.SET_CONFIG, struct.pack("<III", 32, 1, 0) + b"\0")
        wce = self.fe.config()[32]
        b = self.write(100, NEW)
        self.assertEqual((wce, a, b), (0, (0, 1), (0, 1)), self.why("wce, writes"))
        self.assertBytes(self.img(0, len(OLD)), OLD, "cached write after wce=0")
        self.assertBytes(self.img(100, len(NEW)), NEW, "write with wce=0")
        self.cut()
        self.assertBytes(self.img(100, len(NEW)), NEW, "write-through data after a cut")


class HostAware(Device):
    """Host-aware: a regular disk, no zone commands."""

    ARGS = ("--set", "cfg.model=2")

    def test_host_aware_is_regular(self):
        fe = self.fe
        res, _, _ = zone_report(fe, 0, 1)
        w = fe.request(vub.T_OUT, 24, [(DATA_GPA, 4096)], write=True)
        msg = self.why(f"features {self.offered:#x}, zone report {res}, "
                       f"write off any pointer {w}")
        self.assertTrue(self.offered >> vub.FEATURES["zoned"] & 1, msg)
        self.assertEqual(res, (vub.S_UNSUPP, 1), msg)
        self.assertEqual(w, (0, 1), msg)
        rc, log = fe.finish()
        self.assertEqual(rc, 0, f"exit {rc}\n--- back end log:\n{tail(log)}")


if __name__ == "__main__":
    unittest.main(testRunner=pycotap.TAPTestRunner(
        message_log=pycotap.LogMode.LogToDiagnostics,
        test_output_log=pycotap.LogMode.LogToDiagnostics))
