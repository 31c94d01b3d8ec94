#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Boot a guest under TCG with named disks, run a command in it, stream
its output (KTAP for the selftests) back, and judge the run.

A run fails when the command fails, when the guest does not finish within
the timeout, when QEMU dies (the signal that killed it is named), or when
the guest kernel log shows an Oops, BUG, WARNING, hung task, lockdep report
or panic.  The runner kills only the QEMU it
started (by pid) and removes every file and loop device it made.

Disk classes (NAME:CLASS[:key=val,...]):
  ram          raw file on tmpfs (/dev/shm)
  file         raw file on the root filesystem
  loop-nonrot  host loop device with queue/rotational = 0
  loop-rot     host loop device with queue/rotational = 1
  part         partition 1 of a loop device (rot=0|1, default 0)
  null         QEMU null-co (latency-ns=N, reads return zeroes)
  vhost        vhost-user-blk-pci served by selftests/host/vhost_user_blk.py
               (a memfd image; guest RAM becomes a shared memfd)
Keys: size=64M, latency-ns=N (null), rot=0|1 (part),
      fill=1 (ram, file, loop-*, part: write the whole image first, so the
      guest never reads a hole and no write allocates host pages),
      dev.PROP=VAL (virtio-blk-pci property, vhost-user-blk-pci for vhost),
      blk.KEY=VAL (-blockdev key), absent=1 (the guest is not expected to
      make a disk of it: not counted in VBLK_NDISKS/VBLK_DISK_INFO, named
      in VBLK_ABSENT_DISKS).  vhost only: cfg.FIELD=VAL (virtio_blk_config
      field), feat.NAME=on|off (feature bit), vu.lenient=LIMIT[+LIMIT]
      (limits the back end does not enforce; see the back end's --help),
      hotplug=1 (not attached at boot, so the firmware never drives it:
      the guest asks for it with "plug NAME"; named in VBLK_HOTPLUG_DISKS
      and left out of VBLK_NDISKS/VBLK_DISK_INFO).
The guest sees each disk with serial NAME.  A vhost back end that saw a
request break the limits it advertised, or a protocol error, fails the run.

The guest can ask the host for an action by printing a line
"VBLK-HOST <action> <args>" on its control channel; the runner replies
"VBLK-HOST-REPLY <status> <json>".  Actions: qmp <json-command>,
device_del <id> (waits for DEVICE_DELETED), plug <disk> (attaches a
hotplug=1 disk), migrate [DISK.PROP=VAL ...]
(live migration to a new QEMU on the same storage, the properties set on
the destination's devices; the run carries on there), backend <disk>
<fault> (a fault of a vhost disk's back end: break-used-id sends it
SIGUSR1, so the next used element it writes has an out-of-range id; the
intended fault does not fail the run, and its "fault:" lines are shown).
"""

import argparse
import atexit
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("VBLK_CACHE", "/var/cache/vblk-adaptive")

# Kernel messages that fail a run whatever the command said.
SPLAT_RE = re.compile(
    r"(Oops|BUG:|kernel BUG at|WARNING:|INFO: task .* blocked for more than|"
    r"Kernel panic|general protection fault|possible circular locking|"
    r"inconsistent lock state|lockdep|UBSAN:|KASAN:|"
    r"stack-protector|RCU detected stall|rcu: INFO:|soft lockup|hard LOCKUP)")


def feature_bit():
    """VIRTIO_BLK_F_BIO from the project's one definition of it."""
    with open(os.path.join(ROOT, "include", "uapi", "linux", "virtio_blk_bio.h")) as f:
        return int(re.search(r"#define VIRTIO_BLK_F_BIO\s+(\d+)", f.read()).group(1))


def size_bytes(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower()
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def reap(proc, timeout):
    """Wait up to @timeout s for @proc to exit, then terminate, then kill it."""
    for stop in (None, proc.terminate, proc.kill):
        if stop:
            stop()
        try:
            proc.wait(timeout=timeout if stop is None else 5)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.wait()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def fill_file(f, size):
    """Write @size bytes of a non-zero pattern to the open file @f."""
    chunk = bytes(range(256)) * 4096
    left = size
    while left:
        n = min(left, len(chunk))
        f.write(chunk[:n])
        left -= n


class Disk:
    CLASSES = ("ram", "file", "loop-nonrot", "loop-rot", "part", "null", "vhost")
    BACKEND = os.path.join(ROOT, "selftests", "host", "vhost_user_blk.py")
    # Faults the vhost back end makes on a signal (see its docstring)
    FAULTS = {"break-used-id": signal.SIGUSR1}

    def __init__(self, spec):
        parts = spec.split(":", 2)
        if len(parts) < 2 or parts[1] not in self.CLASSES:
            raise ValueError(f"bad disk '{spec}': want NAME:CLASS[:k=v,...] "
                             f"with CLASS one of {', '.join(self.CLASSES)}")
        self.name, self.cls = parts[0], parts[1]
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", self.name):
            raise ValueError(f"bad disk name '{self.name}'")
        self.opts, self.dev, self.blk, self.vhost = {}, {}, {}, []
        for kv in (parts[2].split(",") if len(parts) > 2 and parts[2] else []):
            key, sep, val = kv.partition("=")
            if not sep:
                raise ValueError(f"bad disk option '{kv}' in '{spec}'")
            if key.startswith("dev."):
                self.dev[key[4:]] = val
            elif key.startswith("blk."):
                self.blk[key[4:]] = val
            elif key.startswith(("cfg.", "feat.")) or key == "vu.lenient":
                if self.cls != "vhost":
                    raise ValueError(f"'{key}' is for vhost disks only, in '{spec}'")
                self.vhost.append((key, val))
            elif key in ("size", "latency-ns", "rot", "absent", "hotplug", "fill"):
                self.opts[key] = val
            else:
                raise ValueError(f"unknown disk option '{key}' in '{spec}'")
        self.size = size_bytes(self.opts.get("size", "64M"))
        self.absent = self.opts.get("absent", "0") == "1"
        self.hotplug = self.opts.get("hotplug", "0") == "1"
        if self.hotplug and self.cls != "vhost":
            raise ValueError(f"hotplug=1 is for vhost disks only, in '{spec}'")
        self.fill = self.opts.get("fill", "0") == "1"
        if self.fill and self.cls in ("null", "vhost"):
            raise ValueError(f"fill=1 is for disks backed by an image file, in '{spec}'")
        self.path = None
        self.loop = None
        self.partdev = None
        self.backend = None
        self.backend_log = None
        self.sock = None

    def _loop_setup(self, backing, rotational):
        self.loop = run(["losetup", "-f", "--show", backing]).stdout.strip()
        with open(f"/sys/block/{os.path.basename(self.loop)}/queue/rotational", "w") as f:
            f.write("1" if rotational else "0")

    def _start_backend(self, workdir):
        """Start the vhost-user back end on a socket QEMU will connect to."""
        self.sock = os.path.join(workdir, f"vu-{self.name}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.sock)
        listener.listen(1)
        cmd = [sys.executable, self.BACKEND, "--listen-fd", str(listener.fileno()),
               "--serial", self.name, "--size", str(self.size)]
        for key, val in self.vhost:
            if key == "vu.lenient":
                cmd += [arg for lim in val.split("+") for arg in ("--lenient", lim)]
            else:
                cmd += ["--set", f"{key}={val}"]
        self.backend_log = os.path.join(workdir, f"vhost-{self.name}.log")
        with open(self.backend_log, "w") as log:
            self.backend = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT,
                                            pass_fds=(listener.fileno(),))
        listener.close()

    def check_backend(self, timeout=10):
        """Wait for the vhost back end to exit (QEMU is gone); return
        (ok, lines of its log worth showing)."""
        if not self.backend:
            return True, []
        try:
            self.backend.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.backend.kill()
            self.backend.wait()
        with open(self.backend_log, errors="replace") as f:
            lines = [ln.rstrip() for ln in f]
        ok = self.backend.returncode == 0
        shown = lines if not ok else [ln for ln in lines
                                      if "summary:" in ln or "fault:" in ln]
        return ok, shown[-40:]

    def setup(self, workdir, runid):
        """Create the backing storage; return the -blockdev argument (None
        for a vhost disk, whose back end this starts)."""
        node = f"n-{self.name}"
        if self.cls == "vhost":
            self._start_backend(workdir)
            return None
        if self.cls == "null":
            lat = int(self.opts.get("latency-ns", "0"))
            bd = (f"driver=null-co,node-name={node},size={self.size},"
                  f"latency-ns={lat},read-zeroes=on")
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
            bd = (f"driver=raw,node-name={node},file.driver={proto},"
                  f"file.filename={target}")
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

    def fault(self, name):
        """Make this vhost disk's back end commit the fault @name."""
        if self.cls != "vhost":
            raise RuntimeError(f"backend: disk '{self.name}' is {self.cls}, not vhost")
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


class QMP:
    """Minimal QMP client: commands and the events seen meanwhile."""

    def __init__(self, path, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw")
        self.events = []
        json.loads(self.file.readline())        # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            resp = json.loads(line)
            if "event" in resp:
                self.events.append(resp)
                continue
            if "error" in resp:
                raise RuntimeError(f"QMP {name}: {resp['error']['desc']}")
            return resp["return"]

    def wait_event(self, name, timeout, match=None):
        deadline = time.time() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and (match is None or match(ev)):
                    self.events.remove(ev)
                    return ev
            left = deadline - time.time()
            if left <= 0:
                raise RuntimeError(f"no QMP event {name} within {timeout} s")
            self.sock.settimeout(left)
            try:
                line = self.file.readline()
            except (socket.timeout, TimeoutError):
                continue
            finally:
                self.sock.settimeout(None)
            if not line:
                raise RuntimeError("QMP connection closed")
            resp = json.loads(line)
            if "event" in resp:
                self.events.append(resp)

    def close(self):
        self.sock.close()


def prepare(module=True):
    """Fetch or build everything a guest run needs: kernel, firmware, QEMU,
    initramfs, the C selftests and (with @module) guest/virtio_blk.ko.
    Raises subprocess.CalledProcessError when a step fails."""
    tools = os.path.join(ROOT, "tools")
    for script in ("get-kernel.sh", "get-firmware.sh", "build-qemu.sh", "mkinitramfs.sh"):
        subprocess.run(["bash", os.path.join(tools, script)], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "selftests")], check=True,
                   stdout=subprocess.DEVNULL)
    if module:
        subprocess.run(["bash", os.path.join(tools, "build-module.sh")], check=True)


def host_lpj():
    """loops_per_jiffy for the guest's command line, from the host's
    BogoMIPS (under TCG the guest's TSC is the host's; Debian's HZ is 250).
    A preset skips calibrate_delay() on secondary CPUs, a spin on jiffies
    whose length varies from boot to boot: instruction counts (tools/bench)
    and boot times get steadier.  None if the host does not say."""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^bogomips\s*:\s*([0-9.]+)", f.read(), re.M)
    except OSError:
        return None
    return int(float(m.group(1)) * 500000 / 250) if m else None


def kernel_env():
    env = {}
    path = os.path.join(CACHE, "kernel", "env")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} missing: run tools/get-kernel.sh")
    with open(path) as f:
        for line in f:
            key, _, val = line.strip().partition("=")
            env[key] = val
    return env


# Our module built under another name (tools/build-module.sh --name), to
# load beside the stock virtio_blk: the default module of driver "both".
BENCH_MODULE = "vblk_bench"
BENCH_KO = os.path.join(CACHE, f"module-{BENCH_MODULE}", "guest", f"{BENCH_MODULE}.ko")


class VM:
    def __init__(self, disks, driver="ours", modparams="", cmd="true",
                 timeout=300, qemu=None, machine="pc", smp=2, mem="1G",
                 append="", qemu_args=(), udev=True, echo=True, files=(), env=None,
                 host_actions=None, module=None):
        self.disks = disks
        self.driver = driver
        # Our module: guest/virtio_blk.ko unless @module names another build
        # (driver "both" loads it beside the stock virtio_blk, which must
        # then be a build under another name: tools/build-module.sh --name).
        self.module = module or (BENCH_KO if driver == "both" else
                                 os.path.join(ROOT, "guest", "virtio_blk.ko"))
        self.modparams = modparams
        self.cmd = cmd
        self.timeout = timeout
        self.qemu = qemu or os.path.join(CACHE, "qemu", "build", "qemu-system-x86_64")
        self.machine = machine
        self.smp = smp
        self.mem = mem
        self.append = append
        lpj = host_lpj()
        self.lpj = f"lpj={lpj}" if lpj else ""
        self.qemu_args = list(qemu_args)
        self.udev = udev
        self.echo = echo
        self.files = list(files)
        self.env = dict(env or {})
        # Extra "VBLK-HOST NAME ARGS" actions: NAME -> f(ARGS) -> result
        self.host_actions = dict(host_actions or {})
        self.proc = None
        self.qmp = None
        self.consoles = []
        self.migrations = 0
        self.output = []
        self.splats = []
        tag = os.environ.get("VBLK_RUN_TAG", "")
        self.workdir = tempfile.mkdtemp(prefix=f"vblk-run-{tag + '-' if tag else ''}",
                                        dir="/var/tmp")
        self.runid = os.path.basename(self.workdir)[len("vblk-run-"):]
        atexit.register(self.cleanup)

    # -- image -------------------------------------------------------------
    def _overlay(self, base):
        ov = os.path.join(self.workdir, "overlay")
        os.makedirs(os.path.join(ov, "vblk"))
        if self.driver in ("ours", "both"):
            ko = self.module
            if not os.path.exists(ko):
                raise RuntimeError(f"{ko} missing: build it first (make module)")
            if self.driver == "both" and os.path.basename(ko) == "virtio_blk.ko":
                raise RuntimeError(f"{ko}: driver both needs our module under "
                                   "another name than the stock virtio_blk")
            shutil.copy(ko, os.path.join(ov, "vblk"))
        sel = os.path.join(ROOT, "selftests")
        if os.path.isdir(sel):
            shutil.copytree(sel, os.path.join(ov, "selftests"), symlinks=True)
        udev_rules = os.path.join(ROOT, "guest", "81-virtio-blk-io-path.rules")
        if os.path.exists(udev_rules):
            os.makedirs(os.path.join(ov, "vblk", "udev"))
            shutil.copy(udev_rules, os.path.join(ov, "vblk", "udev"))
        for spec in self.files:
            src, _, dst = spec.partition(":")
            dst = dst or os.path.join("/vblk/files", os.path.basename(src))
            if not os.path.exists(src):
                raise RuntimeError(f"--file {src}: no such file")
            os.makedirs(os.path.dirname(ov + dst), exist_ok=True)
            if os.path.isdir(src):
                shutil.copytree(src, ov + dst, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy(src, ov + dst)
        present = [d for d in self.disks if not d.absent and not d.hotplug]
        conf = {
            "VBLK_DRIVER": self.driver,
            "VBLK_MODULE": os.path.basename(self.module)[:-len(".ko")],
            "VBLK_MODPARAMS": self.modparams,
            "VBLK_NDISKS": str(len(present)),
            "VBLK_DISKS": " ".join(d.name for d in present),
            "VBLK_DISK_INFO": " ".join(f"{d.name}:{d.cls}:{d.size}" for d in present),
            "VBLK_ABSENT_DISKS": " ".join(d.name for d in self.disks if d.absent),
            "VBLK_HOTPLUG_DISKS": " ".join(d.name for d in self.disks if d.hotplug),
            "VBLK_UDEV": "1" if self.udev else "0",
            "VIRTIO_BLK_F_BIO": str(feature_bit()),
            "VBLK_CMD": self.cmd,
        }
        for key in self.env:
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", key) or key in conf:
                raise RuntimeError(f"--env {key}: not a usable variable name")
        conf.update(self.env)
        with open(os.path.join(ov, "vblk", "run.conf"), "w") as f:
            for key, val in conf.items():
                f.write(f"{key}={shlex.quote(val)}\n")
        img = os.path.join(self.workdir, "initrd.img")
        with open(img, "wb") as out:
            with open(base, "rb") as f:
                shutil.copyfileobj(f, out)
            find = subprocess.Popen(["find", "."], cwd=ov, stdout=subprocess.PIPE)
            cpio = subprocess.Popen(["cpio", "-o", "-H", "newc", "--quiet"], cwd=ov,
                                    stdin=find.stdout, stdout=subprocess.PIPE)
            gz = subprocess.run(["gzip", "-1"], stdin=cpio.stdout, stdout=out)
            if find.wait() or cpio.wait() or gz.returncode:
                raise RuntimeError("building the overlay cpio failed")
        return img

    # -- life cycle --------------------------------------------------------
    def _launch(self, tag, device_props=None, incoming=None):
        """Start one QEMU process for this guest and connect to it.

        @tag names its files (console, sockets, log) in the work directory;
        @device_props maps a disk name to extra -device properties (used for
        a migration destination); @incoming is a migration URI."""
        console = os.path.join(self.workdir, f"console{tag}.log")
        ctl_path = os.path.join(self.workdir, f"ctl{tag}.sock")
        qmp_path = os.path.join(self.workdir, f"qmp{tag}.sock")
        machine = self.machine
        if any(d.cls == "vhost" for d in self.disks):
            # vhost-user back ends map guest RAM: it must be a shared memfd.
            machine += ",memory-backend=mem"
        args = [self.qemu, "-accel", "tcg,thread=multi", "-machine", machine,
                "-cpu", "max", "-smp", str(self.smp), "-m", self.mem,
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-L", self.fw, "-kernel", self.vmlinuz, "-initrd", self.initrd,
                "-append", f"console=ttyS0 panic=-1 {self.lpj} {self.append}".strip(),
                "-chardev", f"file,id=con,path={console}",
                "-serial", "chardev:con",
                "-chardev", f"socket,id=ctl,path={ctl_path},server=on,wait=on",
                "-serial", "chardev:ctl",
                "-qmp", f"unix:{qmp_path},server=on,wait=off"]
        if machine != self.machine:
            args += ["-object", f"memory-backend-memfd,id=mem,size={self.mem},share=on"]
        for disk, blockdev in zip(self.disks, self.blockdevs):
            args += disk.qemu_args(blockdev, (device_props or {}).get(disk.name))
        args += self.qemu_args
        if incoming:
            args += ["-incoming", incoming]
        with open(os.path.join(self.workdir, f"qemu{tag}.cmdline"), "w") as f:
            f.write(shlex.join(args) + "\n")
        qlog = open(os.path.join(self.workdir, f"qemu{tag}.log"), "w")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                stdout=qlog, stderr=subprocess.STDOUT)
        ctl = socket.socket(socket.AF_UNIX)
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                qlog.close()
                with open(qlog.name) as f:
                    raise RuntimeError(f"QEMU exited at start: {f.read()[-2000:]}")
            try:
                ctl.connect(ctl_path)
                break
            except OSError:
                if time.time() > deadline:
                    proc.kill()
                    raise
                time.sleep(0.05)
        try:
            qmp = QMP(qmp_path)
        except OSError:
            # e.g. a device that failed to realize after the serial connected
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            qlog.close()
            with open(qlog.name) as f:
                raise RuntimeError(f"QEMU exited at start: {f.read()[-2000:]}")
        self.consoles.append(console)
        return proc, ctl, qmp, qlog

    def start(self):
        kenv = kernel_env()
        self.vmlinuz = kenv["VMLINUZ"]
        base = subprocess.run(["bash", os.path.join(ROOT, "tools", "mkinitramfs.sh")],
                              check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        self.fw = subprocess.run(["bash", os.path.join(ROOT, "tools", "get-firmware.sh")],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        if not os.access(self.qemu, os.X_OK):
            raise RuntimeError(f"{self.qemu} missing: run tools/build-qemu.sh")
        self.initrd = self._overlay(base)
        self.blockdevs = [disk.setup(self.workdir, self.runid) for disk in self.disks]
        self.proc, self.ctl, self.qmp, self.qemu_log = self._launch("")
        self.console = self.consoles[0]
        self.deadline = time.time() + self.timeout

    def migrate(self, device_props=None, timeout=300):
        """Live-migrate the guest to a new QEMU process on the same storage
        (with extra -device properties per disk on the destination), then
        carry on with the destination.  Returns the destination's
        query-migrate result."""
        self.migrations += 1
        tag = f"-m{self.migrations}"
        uri = f"unix:{os.path.join(self.workdir, f'mig{tag}.sock')}"
        proc, ctl, qmp, qlog = self._launch(tag, device_props, incoming=uri)
        try:
            self.qmp.cmd("migrate", uri=uri)
            deadline = time.time() + timeout
            while True:
                info = self.qmp.cmd("query-migrate")
                if info.get("status") == "completed":
                    break
                if info.get("status") in ("failed", "cancelled") or time.time() > deadline:
                    raise RuntimeError(f"migration {info.get('status')}: "
                                       f"{info.get('error-desc', 'timed out')}")
                time.sleep(0.1)
            qmp.wait_event("RESUME", 60)
        except Exception:
            proc.kill()
            proc.wait()
            ctl.close()
            qmp.close()
            qlog.close()
            raise
        # The source is paused for good: retire it, keep its console log.
        try:
            self.qmp.cmd("quit")
        except RuntimeError:
            pass
        self.qmp.close()
        self.ctl.close()
        reap(self.proc, 30)
        self.qemu_log.close()
        self.proc, self.ctl, self.qmp, self.qemu_log = proc, ctl, qmp, qlog
        return info

    def _host_action(self, line):
        action, _, rest = line.partition(" ")
        try:
            if action == "qmp":
                msg = json.loads(rest)
                result = self.qmp.cmd(msg["execute"], **msg.get("arguments", {}))
            elif action == "device_del":
                dev = rest.strip()
                self.qmp.cmd("device_del", id=dev)
                self.qmp.wait_event("DEVICE_DELETED", 60,
                                    lambda ev: ev["data"].get("device") == dev)
                result = {}
            elif action == "plug":
                disks = [d for d in self.disks if d.name == rest.strip() and d.hotplug]
                if not disks:
                    raise RuntimeError(f"plug: no hotplug=1 disk '{rest.strip()}'")
                disks[0].plug(self.qmp)
                result = {}
            elif action == "backend":
                name, _, fault = rest.strip().partition(" ")
                disks = [d for d in self.disks if d.name == name]
                if not disks:
                    raise RuntimeError(f"backend: no disk '{name}'")
                disks[0].fault(fault.strip())
                result = {}
            elif action == "migrate":
                props = {}
                for kv in rest.split():
                    key, sep, val = kv.partition("=")
                    disk, dot, prop = key.partition(".")
                    if not sep or not dot:
                        raise RuntimeError(f"migrate: bad '{kv}', want DISK.PROP=VAL")
                    props.setdefault(disk, {})[prop] = val
                info = self.migrate(props)
                result = {"status": info["status"],
                          "total-time": info.get("total-time")}
            elif action in self.host_actions:
                result = self.host_actions[action](rest)
            else:
                raise RuntimeError(f"unknown host action '{action}'")
            reply = f"VBLK-HOST-REPLY 0 {json.dumps(result)}"
        except Exception as exc:        # reported to the guest, which fails
            reply = f"VBLK-HOST-REPLY 1 {json.dumps(str(exc))}"
        self.ctl.sendall((reply + "\n").encode())

    def _qemu_end(self):
        """How the QEMU process ended, naming the signal that killed it."""
        rc = self.proc.returncode
        if rc is not None and rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = "an unknown signal"
            return f"QEMU was killed by signal {-rc} ({name})"
        return f"QEMU exited ({rc})"

    def wait(self):
        """Stream the guest's output until VBLK-EXIT; return its status
        (None when the guest died or timed out)."""
        buf = b""
        status = None
        while status is None:
            left = self.deadline - time.time()
            if left <= 0:
                print(f"# vmrun: timeout after {self.timeout} s", flush=True)
                break
            ready, _, _ = select.select([self.ctl], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    print(f"# vmrun: {self._qemu_end()} before the guest finished",
                          flush=True)
                    break
                continue
            data = self.ctl.recv(65536)
            if not data:
                try:
                    self.proc.wait(timeout=5)
                    end = f": {self._qemu_end()}"
                except subprocess.TimeoutExpired:
                    end = ""
                print(f"# vmrun: guest control channel closed{end}", flush=True)
                break
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode(errors="replace").rstrip("\r")
                if line.startswith("VBLK-EXIT "):
                    status = int(line.split()[1])
                elif line.startswith("VBLK-HOST "):
                    self._host_action(line[len("VBLK-HOST "):])
                else:
                    self.output.append(line)
                    if self.echo:
                        print(line, flush=True)
        return status

    def stop(self):
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        if self.proc:
            reap(self.proc, 10)         # the guest's poweroff is on its way

    def check_console(self):
        self.splats = []
        for console in self.consoles:
            if os.path.exists(console):
                with open(console, errors="replace") as f:
                    self.splats += [ln.rstrip() for ln in f if SPLAT_RE.search(ln)]
        return not self.splats

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for disk in self.disks:
            disk.cleanup()
        if os.environ.get("VBLK_KEEP"):
            return
        shutil.rmtree(self.workdir, ignore_errors=True)

    def check_backends(self, timeout=10):
        """Report each vhost back end; False if one failed."""
        good = True
        for disk in self.disks:
            ok, lines = disk.check_backend(timeout)
            if not ok:
                print(f"# vmrun: vhost back end of {disk.name} failed "
                      f"(exit {disk.backend.returncode}):", flush=True)
                good = False
            for ln in lines:
                print(f"# vmrun:   {ln}", flush=True)
        return good

    def run(self):
        """Start, wait, judge; return 0 for a clean pass."""
        try:
            try:
                self.start()
            except Exception:
                self.check_backends(timeout=2)      # why a back end gave up
                raise
            status = self.wait()
            self.stop()
            healthy = self.check_console()
            backends = self.check_backends()
            if not healthy:
                print("# vmrun: guest kernel reported problems:", flush=True)
                for ln in self.splats[:40]:
                    print(f"#   {ln}", flush=True)
            if status is None and self.consoles:
                with open(self.consoles[-1], errors="replace") as f:
                    tail = f.read().splitlines()[-30:]
                print("# vmrun: guest console tail:", flush=True)
                for ln in tail:
                    print(f"#   {ln}", flush=True)
            elif status != 0:
                print(f"# vmrun: guest command exited with {status}", flush=True)
            return 0 if status == 0 and healthy and backends else 1
        finally:
            self.cleanup()


def selftests_cmd(tests):
    return "./run_tests.sh " + " ".join(shlex.quote(t) for t in tests)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", choices=("ours", "stock", "both", "none"), default="ours",
                    help="virtio_blk to load: ours (guest/virtio_blk.ko), the stock "
                         "in-tree module, both (the stock one binds the disks, ours "
                         "is loaded beside it: --module, by default the vblk_bench build of "
                         "tools/build-module.sh --name vblk_bench) or none (the command "
                         "loads it)")
    ap.add_argument("--module", metavar="KO",
                    help="our module's file (default guest/virtio_blk.ko, "
                         "for --driver both the vblk_bench build)")
    ap.add_argument("--module-param", action="append", default=[], metavar="K=V",
                    help="virtio_blk module parameter (repeatable)")
    ap.add_argument("--disk", action="append", default=[], metavar="NAME:CLASS[:k=v,...]")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--cmd", help="shell command to run in the guest (cwd /selftests)")
    group.add_argument("--selftests", help="space-separated selftests to run (KTAP)")
    ap.add_argument("--timeout", type=int, default=300, help="hard limit, seconds")
    ap.add_argument("--qemu", help="QEMU binary (default: the bench's build)")
    ap.add_argument("--machine", default="pc")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", default="1G")
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--no-udev", action="store_true", help="do not start systemd-udevd")
    ap.add_argument("--qemu-arg", action="append", default=[], help="extra QEMU argument")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment variable for the guest command (repeatable)")
    ap.add_argument("--file", action="append", default=[], metavar="HOST[:GUEST]",
                    help="copy a host file or directory into the guest "
                         "(default /vblk/files/NAME); its files replace the image's")
    opts = ap.parse_args()

    try:
        disks = [Disk(spec) for spec in opts.disk]
    except ValueError as exc:
        ap.error(str(exc))
    if any("=" not in kv for kv in opts.env):
        ap.error("--env takes NAME=VALUE")
    names = [d.name for d in disks]
    if len(set(names)) != len(names):
        ap.error("disk names must be unique")
    cmd = opts.cmd if opts.cmd is not None else selftests_cmd(opts.selftests.split())
    vm = VM(disks, driver=opts.driver, module=opts.module,
            modparams=" ".join(opts.module_param), cmd=cmd,
            timeout=opts.timeout, qemu=opts.qemu, machine=opts.machine, smp=opts.smp,
            mem=opts.mem, append=opts.append, qemu_args=opts.qemu_arg,
            udev=not opts.no_udev, files=opts.file,
            env=dict(kv.split("=", 1) for kv in opts.env if "=" in kv))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        return vm.run()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"# vmrun: error: {exc}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
