#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Check the VIRTIO_BLK_F_BIO medium information of the patched QEMU
without a guest.

For each class of host storage (tmpfs file, file on the root
filesystem, loop devices marked rotational or not, a partition of a
loop device, a file on btrfs over a loop device, null-co), start QEMU paused (-S, no guest:
tools/vblk/vm.py's VM with boot=False) with one virtio-blk disk of
tools/vblk/disks.py and bio=on, and read the device's host features with
x-query-virtio-status and its medium information with qom-get
media-info: the media kind, rotation_rate.  Latency cases let the VM run
("cont") and wait, bounded, for the background probe's read_latency_hint.
A migration case moves a running VM onto storage with another latency:
the destination starts with the source's fields and ends with its own
measurement.  A refused sysfs read (the attribute overmounted, in a
private mount namespace, by a file only root may read, and QEMU run as
nobody) must leave the medium unknown with one warning.  Each case is one test
and one QEMU (two for a migration); its storage (files, loop devices,
partitions, mounts) is set up for it and removed after it,
whatever the outcome.  A failure shows QEMU's command line and log.

Needs root (losetup, addpart, mkfs.btrfs, mount, unshare, setpriv, sysfs
writes) and the
QEMU build: without them every test fails.  QEMU=PATH overrides the
build.  Output is TAP (pycotap); exit status 0 when everything passed.

  probe_matrix.py [ProbeMatrix.test_NAME ...]
"""

import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

import pycotap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "tools"))
from vblk.disks import Disk  # noqa: E402
from vblk.paths import FIRMWARE, QEMU  # noqa: E402
from vblk.qmp import QMP  # noqa: E402
from vblk.vm import VM  # noqa: E402

QEMU_BIN = os.environ.get("QEMU", QEMU)
BIO_NAME = "VIRTIO_BLK_F_BIO:"
QMP_TIMEOUT = 30        # a QEMU that stops answering QMP fails its case
PROBE_TIMEOUT = 60      # the background probe finishes within this
MIGRATION_TIMEOUT = 60  # the destination leaves "inmigrate" within this
LOG_TAIL = 30

# name: (disk spec (a tools/vmrun --disk), expected media-info), or
# (None, expected, extra QEMU arguments) for storage no disk class makes
# (see STORAGE).  Expected: offered (the bit, in x-query-virtio-status
# and media-info), and when given media, rotation-rate.
CASES = {
    "tmpfs file": ("d:ram:bio=on", dict(offered=True, media="memory", rotation=1)),
    "root fs file": ("d:file:bio=on", dict(offered=True, media="ROOTFS")),
    "non-rotational loop device": ("d:loop-nonrot:bio=on",
                                   dict(offered=True, media="solid-state", rotation=1)),
    "rotational loop device": ("d:loop-rot:bio=on",
                               dict(offered=True, media="rotational", rotation=0)),
    "partition of a rotational loop device": ("d:part:rot=1,bio=on",
                                              dict(offered=True, media="rotational",
                                                   rotation=0)),
    "partition of a non-rotational loop device": ("d:part:rot=0,bio=on",
                                                  dict(offered=True, media="solid-state",
                                                       rotation=1)),
    "null-co": ("d:null:bio=on", dict(offered=True, media="memory", rotation=1)),
    "rotation_rate property on a rotational device": (
        "d:loop-rot:bio=on,dev.rotation_rate=7200",
        dict(offered=True, media="rotational", rotation=7200)),
    "bio=off: not offered": ("d:ram:bio=off", dict(offered=False, media="memory")),
    "default: not offered": ("d:ram", dict(offered=False, media="memory")),
    "file on btrfs over a non-rotational loop device": (
        None, dict(offered=True, media="solid-state", rotation=1), "btrfs:0"),
    "file on btrfs over a rotational loop device": (
        None, dict(offered=True, media="rotational", rotation=0), "btrfs:1"),
}

# name: (disk spec, or "null:LATENCY_NS" for null-co with data to time;
# expected media-info probe outcome and read-latency-hint bounds (min,
# max or None) in us).  The VM runs; the probe runs in the background.
LATENCY = {
    "null-co, 2 ms per read": (
        "null:2000000", dict(probe="measured", hint=(2000, None))),
    "null-co reading zeroes: memory, zeroes timed too": (
        "d:null:bio=on,latency-ns=2000000", dict(probe="measured", hint=(2000, None))),
    "filled tmpfs file: memory, page cache timed": (
        "d:ram:bio=on,fill=1,size=16M", dict(probe="measured", hint=(1, None))),
    "sparse tmpfs file: memory, holes timed": (
        "d:ram:bio=on,size=16M", dict(probe="measured", hint=(1, None))),
    "filled file, cache.direct=on": (
        "d:file:bio=on,fill=1,size=16M,blk.cache.direct=on", dict(probe="measured",
                                                                  hint=(1, None))),
    "filled file in the page cache: not timed": (
        "d:file:bio=on,fill=1,size=16M", dict(probe="reads may come from the host page cache",
                                              hint=(0, 0))),
    "sparse file: holes are not timed": (
        "d:file:bio=on,size=16M,blk.cache.direct=on",
        dict(probe="too little allocated data to time", hint=(0, 0))),
}


def null_args(latency_ns, node="n-d"):
    """-blockdev of a null-co node with data to time (read-zeroes=off)."""
    return ["-blockdev", f"driver=null-co,node-name={node},size=16777216,"
            f"read-zeroes=off,latency-ns={latency_ns}"]


def device_args(node="n-d"):
    return ["-device", f"virtio-blk-pci,id=d,drive={node},bio=on"]


def rootfs_media():
    """What the root filesystem's disk says in sysfs, as QEMU would read it."""
    st = os.stat("/var/tmp")
    disk = os.path.realpath(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if os.path.exists(os.path.join(disk, "partition")):
        disk = os.path.dirname(disk)
    with open(os.path.join(disk, "queue", "rotational")) as f:
        return "rotational" if f.read().strip() == "1" else "solid-state"


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


class ProbeMatrix(unittest.TestCase):
    """One test per case of CASES, LATENCY and the migration (made below)."""

    def setUp(self):
        # A missing prerequisite fails every case, it skips none.
        self.assertEqual(os.geteuid(), 0, "needs root (losetup, addpart, sysfs writes)")
        self.assertTrue(os.access(QEMU_BIN, os.X_OK),
                        f"no QEMU at {QEMU_BIN}: run tools/build-qemu.sh")
        self.vms = []

    def qemu(self, disks, qemu_args=()):
        """A paused QEMU with @disks (Disk objects), read over QMP; it and
        its storage go at the end of the test, whatever happens."""
        vm = VM(disks, qemu=QEMU_BIN, machine="pc", mem="128M", smp=1,
                qemu_args=list(qemu_args), boot=False)
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

    # -- storage no disk class makes ------------------------------------
    def loop(self, rotational, size=64 << 20):
        """A loop device over a sparse file, its rotational attribute set."""
        fd, img = tempfile.mkstemp(prefix="vblk-probe-", suffix=".img", dir="/var/tmp")
        os.ftruncate(fd, size)
        os.close(fd)
        self.addCleanup(os.unlink, img)
        dev = sh("losetup", "-f", "--show", img)
        self.addCleanup(subprocess.run, ["losetup", "-d", dev], capture_output=True)
        with open(f"/sys/block/{os.path.basename(dev)}/queue/rotational", "w") as f:
            f.write("1" if rotational else "0")
        return dev

    def storage(self, what):
        """QEMU arguments for dm:ROT or btrfs:ROT storage.  (No dm case in
        CASES: this host's kernel has no device-mapper.)"""
        kind, rot = what.split(":")
        dev = self.loop(rot == "1", 256 << 20)     # btrfs' minimum: 114 MiB
        if kind == "dm":
            name = f"vblk-probe-{os.getpid()}"
            sectors = int(sh("blockdev", "--getsz", dev))
            subprocess.run(["dmsetup", "create", name, "--table",
                            f"0 {sectors} linear {dev} 0"], check=True, capture_output=True)
            self.addCleanup(subprocess.run, ["dmsetup", "remove", "--retry", name],
                            capture_output=True)
            target = f"/dev/mapper/{name}"
            return ["-blockdev", f"driver=raw,node-name=n-d,file.driver=host_device,"
                    f"file.filename={target}"] + device_args()
        sh("mkfs.btrfs", "-q", "-f", dev)
        mnt = tempfile.mkdtemp(prefix="vblk-probe-btrfs-", dir="/var/tmp")
        self.addCleanup(os.rmdir, mnt)
        sh("mount", "-t", "btrfs", dev, mnt)
        self.addCleanup(subprocess.run, ["umount", mnt], capture_output=True)
        img = os.path.join(mnt, "disk.img")
        with open(img, "wb") as f:
            f.truncate(16 << 20)
        return ["-blockdev", f"driver=raw,node-name=n-d,file.driver=file,"
                f"file.filename={img}"] + device_args()

    # -- reading the device ------------------------------------------------
    def media(self, vm):
        """(bit in x-query-virtio-status, qom-get media-info) of the one
        virtio-blk device of @vm."""
        devs = [d for d in vm.qmp.cmd("x-query-virtio") if d["name"] == "virtio-blk"]
        self.assertEqual(len(devs), 1, f"virtio-blk devices: {devs}{self.logs()}")
        path = devs[0]["path"]
        status = vm.qmp.cmd("x-query-virtio-status", path=path)
        feats = status["host-features"]["dev-features"]
        in_status = any(f.startswith(BIO_NAME) for f in feats)
        return in_status, vm.qmp.cmd("qom-get", path=path, property="media-info")

    def wait_probe(self, vm, runs=1):
        """media-info once the probe has finished @runs runs."""
        deadline = time.monotonic() + PROBE_TIMEOUT
        while True:
            info = self.media(vm)[1]
            if info["probes"] >= runs:
                return info
            if time.monotonic() > deadline:
                self.fail(f"the probe did not finish {runs} run(s) within "
                          f"{PROBE_TIMEOUT} s: {info}{self.logs()}")
            time.sleep(0.05)

    def run_case(self, spec, want, storage=None):
        args = self.storage(storage) if storage else []
        vm = self.qemu([Disk(spec)] if spec else [], args)
        in_status, info = self.media(vm)
        print(f"media-info: {info}")
        media = rootfs_media() if want.get("media") == "ROOTFS" else want.get("media")
        errs = []
        if in_status != want["offered"] or info["offered"] != want["offered"]:
            errs.append(f"bit offered {in_status}/{info['offered']}, want {want['offered']}")
        if media and info["media"] != media:
            errs.append(f"media {info['media']}, want {media}")
        rotation = want.get("rotation", {"memory": 1, "solid-state": 1}.get(media, 0)
                            if media else None)
        if rotation is not None and info["rotation-rate"] != rotation:
            errs.append(f"rotation-rate {info['rotation-rate']}, want {rotation}")
        self.assertFalse(errs, "\n".join(errs) + f"\n{info}{self.logs()}")

    def run_latency(self, spec, want):
        if spec.startswith("null:"):
            vm = self.qemu([], null_args(spec[5:]) + device_args())
        else:
            vm = self.qemu([Disk(spec)])
        vm.qmp.cmd("cont")
        info = self.wait_probe(vm)
        print(f"media-info: {info}")
        lo, hi = want["hint"]
        hint = info["read-latency-hint"]
        self.assertEqual(info["probe"], want["probe"], f"{info}{self.logs()}")
        self.assertGreaterEqual(hint, lo, f"{info}{self.logs()}")
        if hi is not None:
            self.assertLessEqual(hint, hi, f"{info}{self.logs()}")

    def test_sysfs_read_refused(self):
        """a sysfs read refused (EACCES, as under a confined QEMU's
        profile): media unknown, rotation_rate 0, one warning"""
        dev = self.loop(False)
        attr = os.path.realpath(f"/sys/dev/block/{os.major(os.stat(dev).st_rdev)}:"
                                f"{os.minor(os.stat(dev).st_rdev)}/queue/rotational")
        tmp = tempfile.mkdtemp(prefix="vblk-probe-denied-", dir="/var/tmp")
        self.addCleanup(subprocess.run, ["rm", "-rf", tmp])
        os.chmod(tmp, 0o777)
        shut = os.path.join(tmp, "rotational")
        with open(shut, "w") as f:
            f.write("0\n")
        os.chmod(shut, 0)
        mode = os.stat(dev).st_mode & 0o777
        os.chmod(dev, 0o666)        # QEMU runs as nobody below
        self.addCleanup(os.chmod, dev, mode)
        sock = os.path.join(tmp, "qmp.sock")
        log = os.path.join(tmp, "qemu.log")
        qemu = " ".join([QEMU_BIN, "-S", "-nodefaults", "-machine", "pc", "-display", "none",
                         "-L", FIRMWARE, "-blockdev",
                         f"driver=host_device,node-name=d,filename={dev}",
                         "-device", "virtio-blk-pci,id=d,drive=d,bio=on",
                         "-qmp", f"unix:{sock},server=on,wait=off"])
        # A private mount namespace where the attribute is a file only
        # root may read, and QEMU without root's capabilities.
        with open(log, "w") as out:
            proc = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 f"mount --bind {shut} {attr} && exec setpriv --reuid=65534 "
                 f"--regid=65534 --clear-groups {qemu}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        deadline = time.monotonic() + QMP_TIMEOUT
        while not os.path.exists(sock):
            with open(log) as f:
                text = f.read()
            self.assertIsNone(proc.poll(), f"QEMU exited: {text}")
            self.assertLess(time.monotonic(), deadline, f"no QMP socket: {text}")
            time.sleep(0.05)
        qmp = QMP(sock)
        self.addCleanup(qmp.close)
        info = qmp.cmd("qom-get", path="/machine/peripheral/d", property="media-info")
        with open(log) as f:
            text = f.read()
        print(f"media-info: {info}\nQEMU said: {text.strip()}")
        self.assertEqual(info["media"], "unknown", f"{info}\n{text}")
        self.assertEqual(info["rotation-rate"], 0, f"{info}\n{text}")
        self.assertEqual(text.count("sysfs refused"), 1, text)

    def test_migration_onto_slower_storage(self):
        """migration onto storage with 20 ms per read: the destination
        starts with the source's fields and ends with its own hint"""
        src = self.qemu([], null_args(0) + device_args())
        src.qmp.cmd("cont")
        before = self.wait_probe(src)
        self.assertEqual(before["probe"], "measured", f"{before}{self.logs()}")
        self.assertLess(before["read-latency-hint"], 20000, f"{before}{self.logs()}")
        uri = f"unix:{os.path.join(src.workdir, 'mig.sock')}"
        dst = self.qemu([], null_args(20000000) + device_args() + ["-incoming", uri])
        src.qmp.cmd("migrate", uri=uri)
        deadline = time.monotonic() + MIGRATION_TIMEOUT
        while (status := dst.qmp.cmd("query-status")["status"]) != "running":
            if status == "paused":      # -S: the runner's QEMU starts paused
                # migrated, not yet measured: the fields the guest last read
                carried = self.media(dst)[1]
                self.assertEqual(carried["probes"], 0, f"{carried}{self.logs()}")
                self.assertEqual(carried["read-latency-hint"], before["read-latency-hint"],
                                 f"source {before}, destination {carried}{self.logs()}")
                dst.qmp.cmd("cont")
                continue
            if time.monotonic() > deadline:
                self.fail(f"destination not running after {MIGRATION_TIMEOUT} s; "
                          f"source: {src.qmp.cmd('query-migrate')}{self.logs()}")
            time.sleep(0.05)
        after = self.wait_probe(dst)
        print(f"source: {before}\ndestination: {after}")
        self.assertTrue(after["offered"], f"{after}{self.logs()}")
        self.assertEqual(after["probe"], "measured", f"{after}{self.logs()}")
        self.assertGreaterEqual(after["read-latency-hint"], 20000, f"{after}{self.logs()}")


def method_name(name):
    return "test_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def add_tests():
    """One method per case, named after it; the case's name is its doc."""
    for name, (spec, want, *storage) in CASES.items():
        def test(self, spec=spec, want=want, storage=storage):
            self.run_case(spec, want, *storage)
        test.__doc__ = name
        assert not hasattr(ProbeMatrix, method_name(name)), name
        setattr(ProbeMatrix, method_name(name), test)
    for name, (spec, want) in LATENCY.items():
        def test(self, spec=spec, want=want):
            self.run_latency(spec, want)
        test.__doc__ = name
        assert not hasattr(ProbeMatrix, method_name(name)), name
        setattr(ProbeMatrix, method_name(name), test)


add_tests()

if __name__ == "__main__":
    unittest.main(testRunner=pycotap.TAPTestRunner(
        message_log=pycotap.LogMode.LogToDiagnostics,
        test_output_log=pycotap.LogMode.LogToDiagnostics))
