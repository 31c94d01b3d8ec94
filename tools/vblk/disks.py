# SPDX-License-Identifier: GPL-2.0
"""The disks of a guest: host storage of each class, and the QEMU
arguments that attach it.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

from .paths import ROOT
from .util import fill_file, run, size_bytes

class Disk:
    CLASSES = ("ram", "file", "loop-nonrot", "loop-rot", "part", "null", "vhost")
    BACKEND = os.path.join(ROOT, "selftests", "host", "vhost_user_blk.py")
    # Faults the vhost back end makes on a signal (see its docstring)
    FAULTS = {"break-used-id": signal.SIGUSR1, "power-cut": signal.SIGUSR2}

    # Disk keys of VIRTIO_BLK_F_BIO (bit 20: the device reports the medium
    # in config space), each a virtio-blk-pci property: bio=on|off offers
    # the bit (the series' "bio", default off); rotation=N and
    # latency-hint=US fix rotation_rate (0 not reported, 1 non-rotating,
    # 1025-65534 rpm) and read_latency_hint (microseconds, 0 not
    # reported) for good, whatever the host detects or measures
    # (tools/qemu-test-patches' x-test-* knobs; the host action "media"
    # changes them on the running guest, with a config change interrupt).
    MEDIA_KEYS = {"bio": "bio", "rotation": "x-test-rotation-rate",
                  "latency-hint": "x-test-read-latency-hint"}
    BIO_VALUES = ("on", "off")
    BIO_HELP = ("bio=on|off offers VIRTIO_BLK_F_BIO or not; there is no bio=auto any "
                "more: the host reports the medium (rotation=N, latency-hint=US to fix it)")

    def __init__(self, spec):
        parts = spec.split(":", 2)
        if len(parts) < 2 or parts[1] not in self.CLASSES:
            raise ValueError(f"bad disk '{spec}': want NAME:CLASS[:k=v,...] "
                             f"with CLASS one of {', '.join(self.CLASSES)}")
        self.name, self.cls = parts[0], parts[1]
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", self.name):
            raise ValueError(f"bad disk name '{self.name}'")
        self.opts, self.dev, self.blk, self.vhost, self.expect = {}, {}, {}, [], {}
        self.errors = []
        for kv in (parts[2].split(",") if len(parts) > 2 and parts[2] else []):
            key, sep, val = kv.partition("=")
            if not sep:
                raise ValueError(f"bad disk option '{kv}' in '{spec}'")
            if key.startswith("dev."):
                if key == "dev.bio" and val not in self.BIO_VALUES:
                    raise ValueError(f"'{kv}' in '{spec}': {self.BIO_HELP}")
                self.dev[key[4:]] = val
            elif key in self.MEDIA_KEYS:
                # VIRTIO_BLK_F_BIO and the medium information it carries
                if key == "bio" and val not in self.BIO_VALUES:
                    raise ValueError(f"'{kv}' in '{spec}': {self.BIO_HELP}")
                if key != "bio" and not re.fullmatch(r"\d+", val):
                    raise ValueError(f"'{kv}' in '{spec}': want a number")
                if self.cls == "vhost":
                    raise ValueError(f"'{key}' is for virtio-blk disks, not vhost, in '{spec}'")
                self.dev[self.MEDIA_KEYS[key]] = val
            elif key.startswith("blk."):
                self.blk[key[4:]] = val
            elif key.startswith(("cfg.", "feat.")) or key in ("vu.lenient", "vu.cache"):
                if self.cls != "vhost":
                    raise ValueError(f"'{key}' is for vhost disks only, in '{spec}'")
                self.vhost.append((key, val))
            elif key.startswith("err."):
                self.errors += self._error_rules(spec, key[4:], val)
            elif key.startswith("expect."):
                # What a test should find on the disk, for the guest only.
                if not re.fullmatch(r"[a-z][a-z0-9-]*", key[7:]) or \
                        not re.fullmatch(r"[A-Za-z0-9_.+-]+", val):
                    raise ValueError(f"bad expectation '{kv}' in '{spec}': want "
                                     "expect.WORD=VALUE, WORD [a-z][a-z0-9-]*")
                self.expect[key[7:]] = val
            elif key in ("size", "latency-ns", "rot", "absent", "hotplug", "fill", "role",
                         "zeroes"):
                self.opts[key] = val
            else:
                raise ValueError(f"unknown disk option '{key}' in '{spec}'")
        self.size = size_bytes(self.opts.get("size", "64M"))
        self.absent = self.opts.get("absent", "0") == "1"
        self.hotplug = self.opts.get("hotplug", "0") == "1"
        if self.hotplug and self.cls != "vhost":
            raise ValueError(f"hotplug=1 is for vhost disks only, in '{spec}'")
        self.fill = self.opts.get("fill", "0") == "1"
        # vu.cache=writeback: the back end's volatile write cache, over an
        # image file that outlives the back end (replug starts a new one).
        self.cache = dict(self.vhost).get("vu.cache")
        if self.cache not in (None, "writeback"):
            raise ValueError(f"vu.cache={self.cache} in '{spec}': want writeback")
        # What a test does with the disk, for the guest only (never QEMU's).
        self.role = self.opts.get("role", "")
        if self.role and not re.fullmatch(r"[a-z][a-z0-9-]*", self.role):
            raise ValueError(f"bad role '{self.role}' in '{spec}': want [a-z][a-z0-9-]*")
        if self.fill and self.cls in ("null", "vhost"):
            raise ValueError(f"fill=1 is for disks backed by an image file, in '{spec}'")
        self.path = None
        self.loop = None
        self.partdev = None
        self.backend = None
        self.backend_log = None
        self.sock = None
        self.past = []          # (Popen, log) of back ends replug replaced
        self.workdir = self.runid = None
        self.image = None

    # err.KIND=SECTOR[+SECTOR...]: QEMU's blkdebug fails with EIO every
    # read (or write) that covers one of these 512-byte sectors, or only
    # the first one with the -once kinds.
    ERRORS = {"read": ("read", False), "write": ("write", False),
              "read-once": ("read", True), "write-once": ("write", True)}

    def _error_rules(self, spec, kind, val):
        if kind not in self.ERRORS:
            raise ValueError(f"unknown error kind 'err.{kind}' in '{spec}': want "
                             f"{', '.join('err.' + k for k in self.ERRORS)}")
        if self.cls in ("null", "vhost"):
            raise ValueError(f"err.{kind} is for disks backed by an image file, in '{spec}'")
        if not re.fullmatch(r"\d+(\+\d+)*", val):
            raise ValueError(f"err.{kind}={val} in '{spec}': want SECTOR[+SECTOR...]")
        iotype, once = self.ERRORS[kind]
        return [(iotype, int(sector), once) for sector in val.split("+")]

    def _blkdebug(self, proto, target):
        """The protocol node's keys, below a blkdebug node with the
        disk's error rules when it has any."""
        if not self.errors:
            return f"file.driver={proto},file.filename={target}"
        keys = [f"file.driver=blkdebug,file.image.driver={proto},file.image.filename={target}"]
        for i, (iotype, sector, once) in enumerate(self.errors):
            rule = f"file.inject-error.{i}"
            keys.append(f"{rule}.event={iotype}_aio,{rule}.iotype={iotype},{rule}.errno=5,"
                        f"{rule}.sector={sector},{rule}.once={'on' if once else 'off'}")
        return ",".join(keys)

    def _loop_setup(self, backing, rotational):
        self.loop = run(["losetup", "-f", "--show", backing]).stdout.strip()
        with open(f"/sys/block/{os.path.basename(self.loop)}/queue/rotational", "w") as f:
            f.write("1" if rotational else "0")

    def _start_backend(self, workdir, runid):
        """Start the vhost-user back end on a socket QEMU will connect to
        (the first one, or another one after replug)."""
        self.workdir, self.runid = workdir, runid
        gen = f"-{len(self.past) + 1}" if self.backend else ""
        if self.backend:
            self.past.append((self.backend, self.backend_log))
        self.sock = os.path.join(workdir, f"vu-{self.name}{gen}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.sock)
        listener.listen(1)
        self.set_file = os.path.join(workdir, f"vu-{self.name}.set")
        cmd = [sys.executable, self.BACKEND, "--listen-fd", str(listener.fileno()),
               "--serial", self.name, "--size", str(self.size),
               "--set-file", self.set_file]
        for key, val in self.vhost:
            if key == "vu.lenient":
                cmd += [arg for lim in val.split("+") for arg in ("--lenient", lim)]
            elif key == "vu.cache":
                self.image = f"/dev/shm/vblk-{runid}-{self.name}.img"
                # A cut lands just before one of the next 16 requests.
                cmd += ["--cache", val, "--image", self.image, "--cut-within", "16"]
            else:
                cmd += ["--set", f"{key}={val}"]
        self.backend_log = os.path.join(workdir, f"vhost-{self.name}{gen}.log")
        with open(self.backend_log, "w") as log:
            self.backend = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT,
                                            pass_fds=(listener.fileno(),))
        listener.close()

    @staticmethod
    def _judge(proc, log, timeout):
        """Wait for one back end to exit; (ok, lines of its log worth
        showing: all of them if it failed)."""
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with open(log, errors="replace") as f:
            lines = [ln.rstrip() for ln in f]
        ok = proc.returncode == 0
        shown = lines if not ok else [ln for ln in lines
                                      if "summary:" in ln or "fault:" in ln]
        return ok, shown[-40:]

    def check_backend(self, timeout=10):
        """Wait for the vhost back end to exit (QEMU is gone); return
        (ok, lines of its log worth showing), those replug replaced
        included: ok only when every one of them exited 0."""
        if not self.backend:
            return True, []
        good, shown = True, []
        for proc, log in self.past + [(self.backend, self.backend_log)]:
            ok, lines = self._judge(proc, log, timeout)
            good = good and ok
            shown += lines
        return good, shown[-200:]

    def setup(self, workdir, runid):
        """Create the backing storage; return the -blockdev argument (None
        for a vhost disk, whose back end this starts)."""
        node = f"n-{self.name}"
        if self.cls == "vhost":
            self._start_backend(workdir, runid)
            return None
        if self.cls == "null":
            lat = int(self.opts.get("latency-ns", "0"))
            # zeroes=0: reads return whatever the buffer held, and the
            # host's latency probe has data to time (it skips zeroes)
            zeroes = "on" if self.opts.get("zeroes", "1") == "1" else "off"
            bd = (f"driver=null-co,node-name={node},size={self.size},"
                  f"latency-ns={lat},read-zeroes={zeroes}")
        else:
            if self.cls == "ram":
                self.path = f"/dev/shm/vblk-{runid}-{self.name}.img"
            else:
                self.path = os.path.join(workdir, f"{self.name}.img")
            extra = 1 << 20 if self.cls == "part" else 0
            with open(self.path, "wb") as f:
                if self.fill:
                    fill_file(f, self.size + extra)
                else:
                    f.truncate(self.size + extra)
            target = self.path
            proto = "file"
            if self.cls in ("loop-nonrot", "loop-rot"):
                self._loop_setup(self.path, self.cls == "loop-rot")
                target, proto = self.loop, "host_device"
            elif self.cls == "part":
                self._loop_setup(self.path, self.opts.get("rot", "0") == "1")
                run(["addpart", self.loop, "1", "2048", str(self.size // 512)])
                self.partdev = self.loop + "p1"
                for _ in range(50):
                    if os.path.exists(self.partdev):
                        break
                    time.sleep(0.1)
                else:
                    raise RuntimeError(f"{self.partdev} did not appear")
                target, proto = self.partdev, "host_device"
            bd = f"driver=raw,node-name={node},{self._blkdebug(proto, target)}"
        for key, val in self.blk.items():
            bd += f",{key}={val}"
        return bd

    def device_arg(self, overrides=None):
        """-device argument; @overrides replace or add properties."""
        if self.cls == "vhost":
            dev = f"vhost-user-blk-pci,id={self.name},chardev=vu-{self.name}"
        else:
            dev = f"virtio-blk-pci,id={self.name},drive=n-{self.name},serial={self.name}"
        for key, val in {**self.dev, **(overrides or {})}.items():
            dev += f",{key}={val}"
        return dev

    def qemu_args(self, blockdev, overrides=None):
        """QEMU arguments that attach this disk at boot."""
        if self.hotplug:
            return []
        if self.cls == "vhost":
            return ["-chardev", f"socket,id=vu-{self.name},path={self.sock}",
                    "-device", self.device_arg(overrides)]
        return ["-blockdev", blockdev, "-device", self.device_arg(overrides)]

    def plug(self, qmp):
        """Attach this vhost disk to the running guest."""
        qmp.cmd("chardev-add", id=f"vu-{self.name}",
                backend={"type": "socket", "data": {
                    "addr": {"type": "unix", "data": {"path": self.sock}},
                    "server": False}})
        props = {k: int(v) if re.fullmatch(r"\d+", v) else v for k, v in self.dev.items()}
        qmp.cmd("device_add", driver="vhost-user-blk-pci", id=self.name,
                chardev=f"vu-{self.name}", **props)

    def replug(self, qmp, timeout=30):
        """Attach this vhost disk again after a device_del, served by a new
        back end on the same image file (what it persisted, nothing the
        old one held in memory): the old chardev goes, which ends the old
        back end (its exit status still counts), then plug."""
        if self.cls != "vhost" or not self.cache:
            raise RuntimeError(f"replug: disk '{self.name}' is not a vhost disk "
                               "with vu.cache (an image file to attach again)")
        if self.backend is None:
            raise RuntimeError(f"replug: disk '{self.name}' has no back end")
        if self._plugged(qmp):          # else a hotplug=1 disk's first plug
            qmp.cmd("chardev-remove", id=f"vu-{self.name}")
            try:
                self.backend.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"replug: the back end of '{self.name}' still runs "
                                   f"{timeout} s after its chardev went") from None
            self._start_backend(self.workdir, self.runid)
        self.plug(qmp)

    def _plugged(self, qmp):
        """Whether the chardev of this disk exists in QEMU."""
        return any(c.get("label") == f"vu-{self.name}" for c in qmp.cmd("query-chardev"))

    def fault(self, name):
        """Make this vhost disk's back end commit the fault @name, or with
        "set cfg.FIELD=VALUE ..." change its config and notify the guest."""
        if self.cls != "vhost":
            raise RuntimeError(f"backend: disk '{self.name}' is {self.cls}, not vhost")
        action, _, settings = name.partition(" ")
        if action == "set":
            words = settings.split()
            if not words or not all(re.fullmatch(r"cfg\.[a-z_]+=(0x[0-9a-fA-F]+|\d+)", w)
                                    for w in words):
                raise RuntimeError(f"backend: want 'set cfg.FIELD=VALUE ...', not '{name}'")
            if self.backend is None or self.backend.poll() is not None:
                raise RuntimeError(f"backend: the back end of '{self.name}' is not running")
            with open(self.set_file, "w") as f:
                f.write(" ".join(words) + "\n")
            self.backend.send_signal(signal.SIGHUP)
            return
        if name not in self.FAULTS:
            raise RuntimeError(f"backend: unknown fault '{name}' "
                               f"(known: {', '.join(self.FAULTS)})")
        if self.backend is None or self.backend.poll() is not None:
            raise RuntimeError(f"backend: the back end of '{self.name}' is not running")
        self.backend.send_signal(self.FAULTS[name])

    def cleanup(self):
        if self.backend and self.backend.poll() is None:
            self.backend.kill()
            self.backend.wait()
        if self.partdev:
            subprocess.run(["delpart", self.loop, "1"], capture_output=True)
            self.partdev = None
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], capture_output=True)
            self.loop = None
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)
            self.path = None
        for proc, _ in self.past:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.image and os.path.exists(self.image):
            os.unlink(self.image)
            self.image = None
