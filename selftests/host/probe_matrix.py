#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Check the VIRTIO_BLK_F_BIO probe of the patched QEMU without a guest.

For each class of host storage (tmpfs file, file on the rotational root
filesystem, loop devices marked rotational or not, a partition of a loop
device, null-co with and without latency, a read error, bio=on/off, old
and new machine types, an incoming migration), start QEMU paused (-S,
no guest: tools/vblk/vm.py's VM with boot=False) with one virtio-blk
disk of tools/vblk/disks.py, read the device's host features with
x-query-virtio-status and the probe result with qom-get bio-probe, and
compare with what is expected.  Each case is one test and one QEMU (two
for a migration); its storage (files, loop devices, partitions) is set
up for it and removed after it, whatever the outcome.  Every case prints
the probe's figures; a failure also shows QEMU's command line and log.

Needs root (losetup, addpart, sysfs writes) and the QEMU build: without
them every test fails.  QEMU=PATH overrides the build.  Output is TAP
(pycotap); exit status 0 when everything passed.

  probe_matrix.py [ProbeMatrix.test_NAME ...]
"""

import os
import re
import sys
import time
import unittest

import pycotap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "tools"))
from vblk.disks import Disk  # noqa: E402
from vblk.paths import QEMU  # noqa: E402
from vblk.vm import VM  # noqa: E402

QEMU_BIN = os.environ.get("QEMU", QEMU)
BIO_NAME = "VIRTIO_BLK_F_BIO:"
QMP_TIMEOUT = 30        # a QEMU that stops answering QMP fails its case
MIGRATION_TIMEOUT = 60  # the destination leaves "inmigrate" within this
LOG_TAIL = 30

# Files and loop devices answered reads in 0.03-0.5 ms here, and over
# 5 ms under heavy load on this 2-core VM: give them a 100 ms threshold,
# so these cases test the storage kind; null-co tests the latency
# decision with the default threshold.
LENIENT = "dev.bio=auto,dev.bio-latency-threshold-us=100000"
FAST = "storage is not rotational and fast"

# name: (disk spec (a tools/vmrun --disk), machine, expected probe), or
# (None, machine, expected, extra QEMU arguments) for storage no disk
# class makes.  Expected: offered (the bit, in x-query-virtio-status and
# bio-probe), and when given media, mode, reason, at most max_reads probe
# reads and at most max_duration_ms in realize.
CASES = {
    "tmpfs file": (f"d:ram:{LENIENT}", "pc",
                   dict(offered=True, media="memory", reason=FAST)),
    "rotational root fs file": ("d:file:dev.bio=auto", "pc",
                                dict(offered=False, media="rotational",
                                     reason="storage is rotational")),
    "non-rotational loop device": (f"d:loop-nonrot:{LENIENT}", "pc",
                                   dict(offered=True, media="solid-state", reason=FAST)),
    "non-rotational loop device, cache=none": (
        f"d:loop-nonrot:{LENIENT},blk.cache.direct=on", "pc",
        dict(offered=True, media="solid-state", reason=FAST)),
    "rotational loop device": ("d:loop-rot:dev.bio=auto", "pc",
                               dict(offered=False, media="rotational")),
    "partition of a rotational loop device": ("d:part:rot=1,dev.bio=auto", "pc",
                                              dict(offered=False, media="rotational")),
    "partition of a non-rotational loop device": (f"d:part:rot=0,{LENIENT}", "pc",
                                                  dict(offered=True, media="solid-state")),
    "null-co": ("d:null:dev.bio=auto", "pc",
                dict(offered=True, media="memory", reason=FAST)),
    "null-co with 2 ms latency": ("d:null:latency-ns=2000000,dev.bio=auto", "pc",
                                  dict(offered=False, media="memory",
                                       reason="read latency above bio-latency-threshold-us")),
    # Realize stops waiting when the 20 ms budget runs out; the 1 s read
    # completes in the background.  Realize itself ran for 20 ms and not
    # 1 s (100 ms: slack for a loaded host).
    "null-co with 1 s latency": ("d:null:latency-ns=1000000000,dev.bio=auto", "pc",
                                 dict(offered=False, media="memory", max_reads=0,
                                      max_duration_ms=100,
                                      reason="a probe read outlasted the 20 ms budget")),
    "read error during the probe (blkdebug)": (
        None, "pc",
        dict(offered=False, media="memory", reason="read error in the latency probe"),
        ["-drive", "if=none,id=d0,driver=raw,file.driver=blkdebug,"
         "file.image.driver=null-co,file.inject-error.0.event=read_aio,"
         "file.inject-error.0.errno=5",
         "-device", "virtio-blk-pci,drive=d0,id=d,bio=auto"]),
    "bio=on on rotational storage": ("d:file:dev.bio=on", "pc",
                                     dict(offered=True, mode="on")),
    "bio=off on tmpfs": ("d:ram:dev.bio=off", "pc", dict(offered=False, mode="off")),
    "pc-i440fx-10.0 keeps bio off": ("d:ram", "pc-i440fx-10.0",
                                     dict(offered=False, mode="off")),
    "pc-q35-10.1 defaults to auto": ("d:null", "pc-q35-10.1",
                                     dict(offered=True, mode="auto", media="memory")),
}

# name: (disk spec, offered, media).  The destination must not probe and
# must end up with the source's decision, whatever its own storage says.
MIGRATIONS = {
    "migration, tmpfs": (f"d:ram:{LENIENT}", True, "memory"),
    "migration, rotational file": ("d:file:dev.bio=auto", False, "rotational"),
}


def mismatches(in_status, probe, offered, media=None, mode=None, reason=None,
               max_reads=None, max_duration_ms=None):
    """What differs from the expectation, one line each."""
    errs = []
    if in_status != offered:
        errs.append(f"x-query-virtio-status bit {in_status}, want {offered}")
    if probe["offered"] != offered:
        errs.append(f"bio-probe.offered {probe['offered']}, want {offered}")
    if media and probe["media"] != media:
        errs.append(f"media {probe['media']}, want {media}")
    if mode and probe["mode"] != mode:
        errs.append(f"mode {probe['mode']}, want {mode}")
    if reason and probe["reason"] != reason:
        errs.append(f"reason '{probe['reason']}', want '{reason}'")
    if max_reads is not None and probe["reads"] > max_reads:
        errs.append(f"{probe['reads']} probe reads, want <= {max_reads}")
    if max_duration_ms is not None:
        ms = probe.get("duration-ns", 1e12) / 1e6
        if ms > max_duration_ms:
            errs.append(f"realize waited {ms:.1f} ms for the probe, "
                        f"want <= {max_duration_ms}")
    return errs


def figures(probe):
    """The probe's figures on one line."""
    summary = ", ".join(f"{key}={probe[key]}" for key in
                        ("mode", "media", "latency-ns", "reads", "duration-ns", "offered")
                        if key in probe)
    return f"{summary}; reason: {probe.get('reason')}"


class ProbeMatrix(unittest.TestCase):
    """One test per case of CASES and MIGRATIONS (made below)."""

    def setUp(self):
        # A missing prerequisite fails every case, it skips none.
        self.assertEqual(os.geteuid(), 0, "needs root (losetup, addpart, sysfs writes)")
        self.assertTrue(os.access(QEMU_BIN, os.X_OK),
                        f"no QEMU at {QEMU_BIN}: run tools/build-qemu.sh")
        self.vms = []

    def qemu(self, disks, machine, qemu_args=()):
        """A paused QEMU with @disks (Disk objects), read over QMP; it and
        its storage go at the end of the test, whatever happens."""
        vm = VM(disks, qemu=QEMU_BIN, machine=machine, mem="128M", smp=1,
                qemu_args=qemu_args, boot=False)
        self.addCleanup(vm.cleanup)
        self.addCleanup(vm.stop)
        self.vms.append(vm)
        try:
            vm.start()
        except Exception as exc:
            raise AssertionError(f"QEMU did not start: {type(exc).__name__}: {exc}"
                                 f"{self.logs()}") from exc
        vm.qmp.sock.settimeout(QMP_TIMEOUT)
        return vm

    def logs(self):
        """The command line and log tail of each QEMU of this test."""
        text = ""
        for vm in self.vms:
            for what in ("cmdline", "log"):
                path = os.path.join(vm.workdir, f"qemu.{what}")
                try:
                    with open(path, errors="replace") as f:
                        lines = f.read().splitlines()[-LOG_TAIL:]
                except OSError as exc:
                    lines = [str(exc)]
                text += f"\n--- {path}:\n" + "\n".join(lines)
        return text

    def probe(self, vm):
        """(bit in x-query-virtio-status, qom-get bio-probe) of the one
        virtio-blk device of @vm."""
        devs = [d for d in vm.qmp.cmd("x-query-virtio") if d["name"] == "virtio-blk"]
        self.assertEqual(len(devs), 1, f"virtio-blk devices: {devs}{self.logs()}")
        path = devs[0]["path"]
        status = vm.qmp.cmd("x-query-virtio-status", path=path)
        feats = status["host-features"]["dev-features"]
        in_status = any(f.startswith(BIO_NAME) for f in feats)
        return in_status, vm.qmp.cmd("qom-get", path=path, property="bio-probe")

    def judge(self, what, in_status, probe, **want):
        print(f"{what}: {figures(probe)}")
        errs = mismatches(in_status, probe, **want)
        self.assertFalse(errs, "\n".join(f"{what}: {e}" for e in errs) +
                         f"\n{what}: {figures(probe)}{self.logs()}")

    def run_case(self, spec, machine, want, qemu_args=()):
        vm = self.qemu([Disk(spec)] if spec else [], machine, qemu_args)
        self.judge("probe", *self.probe(vm), **want)

    def run_migration(self, spec, offered, media):
        src = self.qemu([Disk(spec)], "pc")
        self.judge("source", *self.probe(src), offered=offered, media=media)
        # The destination on the same storage: the source's own -blockdev.
        uri = f"unix:{os.path.join(src.workdir, 'mig.sock')}"
        disk = src.disks[0]
        dst = self.qemu([], "pc", disk.qemu_args(src.blockdevs[0]) + ["-incoming", uri])
        # accepted until the source decides, and the image not read
        in_status, probe = self.probe(dst)
        self.judge("destination before", in_status, probe, offered=True,
                   reason="incoming migration: accepted until the source decides")
        self.assertEqual(probe["reads"], 0, "destination read the image before owning it"
                         f"{self.logs()}")
        src.qmp.cmd("migrate", uri=uri)
        deadline = time.monotonic() + MIGRATION_TIMEOUT
        while dst.qmp.cmd("query-status")["status"] == "inmigrate":
            if time.monotonic() > deadline:
                self.fail(f"destination still inmigrate after {MIGRATION_TIMEOUT} s; "
                          f"source: {src.qmp.cmd('query-migrate')}{self.logs()}")
            time.sleep(0.05)
        self.judge("destination after", *self.probe(dst), offered=offered, media=media,
                   reason="decided by the migration source")


def method_name(name):
    return "test_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def add_tests():
    """One method per case, named after it; the case's name is its doc."""
    for name, (spec, machine, want, *extra) in CASES.items():
        def test(self, spec=spec, machine=machine, want=want, extra=extra):
            self.run_case(spec, machine, want, *extra)
        test.__doc__ = name
        assert not hasattr(ProbeMatrix, method_name(name)), name
        setattr(ProbeMatrix, method_name(name), test)
    for name, (spec, offered, media) in MIGRATIONS.items():
        def test(self, spec=spec, offered=offered, media=media):
            self.run_migration(spec, offered, media)
        test.__doc__ = name
        assert not hasattr(ProbeMatrix, method_name(name)), name
        setattr(ProbeMatrix, method_name(name), test)


add_tests()

if __name__ == "__main__":
    unittest.main(testRunner=pycotap.TAPTestRunner(
        message_log=pycotap.LogMode.LogToDiagnostics,
        test_output_log=pycotap.LogMode.LogToDiagnostics))
