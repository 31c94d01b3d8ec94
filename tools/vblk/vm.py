# SPDX-License-Identifier: GPL-2.0
"""A guest under TCG: build steps, the QEMU command line, the run, its
host actions and its verdict.
"""

import atexit
import json
import os
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from .paths import BENCH_KO, CACHE, QEMU, ROOT, feature_bit, kernel_env
from .qmp import QMP
from .util import reap

# Kernel messages that fail a run whatever the command said.
SPLAT_RE = re.compile(
    r"(Oops|BUG:|kernel BUG at|WARNING:|INFO: task .* blocked for more than|"
    r"Kernel panic|general protection fault|possible circular locking|"
    r"inconsistent lock state|lockdep|UBSAN:|KASAN:|"
    r"stack-protector|RCU detected stall|rcu: INFO:|soft lockup|hard LOCKUP)")



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


# QEMU's core dumps: where they are kept, how many, for which signals.
CORES = os.path.join(CACHE, "cores")
CORES_KEPT = 3
# What a guest that timed out left: QEMU's vCPU and thread state.
HANGS = os.path.join(CACHE, "hangs")
HANGS_KEPT = 3
HOST_LOG_SHOWN = 6
VCPUS_GDB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vcpus.gdb")
CORE_SIGNALS = (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL,
                signal.SIGFPE)


def _allow_core():
    """In the QEMU child: core dumps as large as the hard limit allows
    (the guest's RAM is left out of them: dump-guest-core=off)."""
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def _keep_dir(base, kept, name):
    """A new directory @name under @base, dated, of which only the newest
    @kept are left."""
    keep = os.path.join(base, f"{time.strftime('%Y%m%d-%H%M%S')}-{name}")
    os.makedirs(keep)
    for old in sorted(os.listdir(base))[:-kept]:
        shutil.rmtree(os.path.join(base, old), ignore_errors=True)
    return keep


def core_report(qemu, workdir, pid, name):
    """After QEMU died of a signal: the crashing thread's backtrace from
    its core dump (written into @workdir, QEMU's working directory), and
    the core kept under CORES (the newest CORES_KEPT) with the binary's
    path.  Lines for the log; they say why when there is no core."""
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    if pattern.startswith("|") or "/" in pattern:
        return [f"no core here: kernel.core_pattern is '{pattern}'"]
    cores = [c for c in (os.path.join(workdir, "core"),
                         os.path.join(workdir, f"core.{pid}")) if os.path.exists(c)]
    if not cores:
        return [f"no core dump in {workdir} (core_pattern '{pattern}', "
                f"RLIMIT_CORE {resource.getrlimit(resource.RLIMIT_CORE)[1]})"]
    keep = _keep_dir(CORES, CORES_KEPT, f"{name}-{pid}")
    core = os.path.join(keep, "core")
    shutil.move(cores[0], core)
    with open(os.path.join(keep, "qemu"), "w") as f:
        f.write(qemu + "\n")
    lines = [f"core dump kept in {keep}"]
    if not shutil.which("gdb"):
        return lines + ["no gdb to read it"]
    try:
        bt = subprocess.run(["gdb", "-batch", "-nx", "-ex", "bt 24", qemu, core],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=120).stdout
    except subprocess.TimeoutExpired:
        return lines + ["gdb did not read it within 120 s"]
    frames = []
    for ln in bt.splitlines():      # gdb shows frame 0 before the bt as well
        if re.match(r"(#\d|Program terminated)", ln) and ln not in frames:
            frames.append(ln)
    return lines + ["backtrace of the crashing thread:"] + frames


class VM:
    def __init__(self, disks, driver="ours", modparams="", cmd="true",
                 timeout=300, qemu=None, machine="pc", smp=2, mem="1G",
                 append="", qemu_args=(), udev=True, echo=True, files=(), env=None,
                 host_actions=None, module=None, boot=True):
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
        # Absolute: QEMU runs in the run's directory (see _launch()).
        self.qemu = os.path.abspath(qemu or QEMU)
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
        # boot=False: no guest, QEMU only, paused (-S) with no kernel and no
        # control channel, for host-side checks over self.qmp after start()
        # (not for run(), wait() or migrate()); stop() quits it over QMP.
        self.boot = boot
        self.proc = None
        self.qmp = None
        self.consoles = []
        self.migrations = 0
        self.output = []
        # (seconds since start, request, reply status) of each host action,
        # for a hang report; the guest's output not yet ended by a newline
        # (wait() splits it into lines, migrate() adds what the source had)
        self.host_log = []
        self.partial = b""
        self.console_mark = None    # where guest_sysrq() began on the last console
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
            "VBLK_DISK_ROLES": " ".join(f"{d.name}:{d.role}" for d in self.disks if d.role),
            "VBLK_DISK_EXPECT": " ".join(f"{d.name}:{k}={v}" for d in self.disks
                                         for k, v in d.expect.items()),
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
        dump = machine + ",dump-guest-core=off"     # small cores: see core_report()
        args = [self.qemu, "-accel", "tcg,thread=multi", "-machine", dump,
                "-cpu", "max", "-smp", str(self.smp), "-m", self.mem,
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-L", self.fw]
        if self.boot:
            args += ["-kernel", self.vmlinuz, "-initrd", self.initrd,
                     "-append", f"console=ttyS0 panic=-1 {self.lpj} {self.append}".strip(),
                     "-chardev", f"file,id=con,path={console}",
                     "-serial", "chardev:con",
                     "-chardev", f"socket,id=ctl,path={ctl_path},server=on,wait=on",
                     "-serial", "chardev:ctl"]
        else:
            args += ["-S"]
        args += ["-qmp", f"unix:{qmp_path},server=on,wait=off"]
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
        # In the run's directory, where a core dump of it would land.
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, cwd=self.workdir,
                                stdout=qlog, stderr=subprocess.STDOUT,
                                preexec_fn=_allow_core)
        # Wait for the guest's control channel, or without a guest for QMP.
        ctl = socket.socket(socket.AF_UNIX) if self.boot else None
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                qlog.close()
                with open(qlog.name) as f:
                    raise RuntimeError(f"QEMU exited at start: {f.read()[-2000:]}")
            try:
                if ctl:
                    ctl.connect(ctl_path)
                elif not os.path.exists(qmp_path):
                    raise OSError(f"QEMU made no {qmp_path} within 30 s")
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
        if self.boot:
            self.consoles.append(console)
        return proc, ctl, qmp, qlog

    def start(self):
        if self.boot:
            kenv = kernel_env()
            self.vmlinuz = kenv["VMLINUZ"]
            base = subprocess.run(["bash", os.path.join(ROOT, "tools", "mkinitramfs.sh")],
                                  check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        self.fw = subprocess.run(["bash", os.path.join(ROOT, "tools", "get-firmware.sh")],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        if not os.access(self.qemu, os.X_OK):
            raise RuntimeError(f"{self.qemu} missing: run tools/build-qemu.sh")
        if self.boot:
            self.initrd = self._overlay(base)
        self.blockdevs = [disk.setup(self.workdir, self.runid) for disk in self.disks]
        self.proc, self.ctl, self.qmp, self.qemu_log = self._launch("")
        self.console = self.consoles[0] if self.boot else None
        self.started = time.time()
        self.deadline = self.started + self.timeout

    def migrate(self, device_props=None, timeout=120):
        """Live-migrate the guest to a new QEMU process on the same storage
        (with extra -device properties per disk on the destination), then
        carry on with the destination.  Returns the destination's
        query-migrate result."""
        self.migrations += 1
        tag = f"-m{self.migrations}"
        uri = f"unix:{os.path.join(self.workdir, f'mig{tag}.sock')}"
        proc, ctl, qmp, qlog = self._launch(tag, device_props, incoming=uri)
        try:
            # Converge whatever the host's load: no bandwidth cap on the
            # local socket, and the vCPUs throttled when the guest dirties
            # memory faster than a busy host copies it.
            self.qmp.cmd("migrate-set-capabilities",
                         capabilities=[{"capability": "auto-converge", "state": True}])
            self.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 34})
            self.qmp.cmd("migrate", uri=uri)
            deadline = time.time() + timeout
            while True:
                info = self.qmp.cmd("query-migrate")
                if info.get("status") == "completed":
                    break
                if info.get("status") in ("failed", "cancelled"):
                    raise RuntimeError(f"migration {info.get('status')}: "
                                       f"{info.get('error-desc', '')}")
                if time.time() > deadline:
                    # The source carries on; say how far it got.
                    self.qmp.cmd("migrate_cancel")
                    ram = info.get("ram", {})
                    raise RuntimeError(
                        f"migration not completed in {timeout} s ({info.get('status')}; "
                        f"ram remaining {ram.get('remaining')} B, dirty pages "
                        f"{ram.get('dirty-pages-rate')}/s, cpu throttle "
                        f"{info.get('cpu-throttle-percentage', 0)}%)")
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
        reap(self.proc, 30)
        # The guest ran on the source while its memory was copied, and what
        # it wrote to the control channel then reached the source's socket
        # unread (wait() is in this host action): keep it, in order, before
        # anything from the destination.  The source has exited: the socket
        # ends where its data does.
        self.ctl.settimeout(10)
        try:
            while data := self.ctl.recv(65536):
                self.partial += data
        except OSError as exc:
            print(f"# vmrun: the source's control channel after the migration: {exc}",
                  flush=True)
        self.ctl.close()
        self.qemu_log.close()
        self.proc, self.ctl, self.qmp, self.qemu_log = proc, ctl, qmp, qlog
        return info

    MEDIA_PROPS = {"rotation": "x-test-rotation-rate",
                   "latency-hint": "x-test-read-latency-hint"}

    def set_media(self, args):
        """Host action "media NAME [rotation=N] [latency-hint=US]": set the
        disk's rotation_rate and read_latency_hint on the running device
        (qom-set of the x-test-* knobs); a changed value sends a config
        change interrupt when the disk offers VIRTIO_BLK_F_BIO.  Returns
        the device's media-info."""
        name, *pairs = args.split()
        if not pairs:
            raise RuntimeError("media: want NAME rotation=N and/or latency-hint=US")
        path = f"/machine/peripheral/{name}"
        for kv in pairs:
            key, sep, val = kv.partition("=")
            if not sep or key not in self.MEDIA_PROPS or not val.isdigit():
                raise RuntimeError(f"media: bad '{kv}', want rotation=N or latency-hint=US")
            self.qmp.cmd("qom-set", path=path, property=self.MEDIA_PROPS[key], value=int(val))
        return self.qmp.cmd("qom-get", path=path, property="media-info")

    def _host_action(self, line):
        t = time.time() - self.started
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
            elif action == "replug":
                disks = [d for d in self.disks if d.name == rest.strip()]
                if not disks:
                    raise RuntimeError(f"replug: no disk '{rest.strip()}'")
                disks[0].replug(self.qmp)
                result = {}
            elif action == "backend":
                name, _, fault = rest.strip().partition(" ")
                disks = [d for d in self.disks if d.name == name]
                if not disks:
                    raise RuntimeError(f"backend: no disk '{name}'")
                disks[0].fault(fault.strip())
                result = {}
            elif action == "media":
                result = self.set_media(rest)
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
        self.host_log.append((t, line, reply.split()[1]))

    def _qemu_end(self):
        """How the QEMU process ended, naming the signal that killed it
        (and, for a crash, where it crashed: core_report())."""
        rc = self.proc.returncode
        if rc is not None and rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = "an unknown signal"
            end = f"QEMU was killed by signal {-rc} ({name})"
            if -rc in CORE_SIGNALS:
                try:
                    lines = core_report(self.qemu, self.workdir, self.proc.pid,
                                        os.path.basename(self.workdir))
                except OSError as exc:
                    lines = [f"the core dump could not be kept: {exc}"]
                end += "".join(f"\n# vmrun:   {ln}" for ln in lines)
            return end
        return f"QEMU exited ({rc})"

    def wait(self):
        """Stream the guest's output until VBLK-EXIT; return its status
        (None when the guest died or timed out)."""
        status = None
        while status is None:
            left = self.deadline - time.time()
            if left <= 0:
                print(f"# vmrun: timeout after {self.timeout} s", flush=True)
                for ln in self.hang_report():
                    print(f"# vmrun:   {ln}", flush=True)
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
            self.partial += data
            # (a host action may add to self.partial: migrate())
            while b"\n" in self.partial:
                raw, self.partial = self.partial.split(b"\n", 1)
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

    def hang_report(self):
        """At a timeout, before QEMU is stopped: each vCPU's state and
        local APIC (QMP), then, with gdb attached, each vCPU's run and
        interrupt state and the serial ports' as QEMU holds them
        (VCPUS_GDB) and every QEMU thread's backtrace, then what the
        guest's kernel says of its tasks (guest_sysrq()), and the guest's
        whole console, kept under HANGS (the newest HANGS_KEPT).  Lines
        for the log: where it is kept, the last host actions and any
        output the guest did not end, per vCPU its instruction pointer,
        whether it is halted and its APIC timer, the lines of VCPUS_GDB
        and what the guest answered."""
        if not self.proc or self.proc.poll() is not None:
            return ["no hang report: QEMU is not running"]
        keep = _keep_dir(HANGS, HANGS_KEPT,
                         f"{os.path.basename(self.workdir)}-{self.proc.pid}")
        lines = [f"hang report kept in {keep}"]
        lines += [f"host action at {t:.0f} s: {req[:100]} (reply {rc})"
                  for t, req, rc in self.host_log[-HOST_LOG_SHOWN:]]
        if not self.host_log:
            lines.append("no host action was asked for")
        if self.partial:
            lines.append(f"guest output without its newline: "
                         f"{self.partial[-200:].decode(errors='replace')!r}")
        state, qmp_answered = self._qemu_state(keep)
        lines += state
        if qmp_answered:
            lines += self.guest_sysrq()
        for src in self.consoles:
            shutil.copy(src, keep)
        return lines

    def _qemu_state(self, keep):
        """hang_report()'s QMP and gdb part: its lines, and whether QMP
        answered."""
        lines = []
        qmp_answered = True
        try:
            self.qmp.sock.settimeout(10)    # a QEMU whose main loop hangs
            cpus = self.qmp.cmd("query-cpus-fast")
            regs = self.qmp.cmd("human-monitor-command", **{"command-line": "info registers -a"})
            apics = {c["cpu-index"]: self.qmp.cmd(        # APIC ID = index here
                "human-monitor-command", **{"command-line": f"info lapic {c['cpu-index']}"})
                for c in cpus}
        except (OSError, RuntimeError, ValueError) as exc:
            lines.append(f"QMP did not answer: {exc}")
            regs, apics = "", {}
            qmp_answered = False
        finally:
            self.qmp.sock.settimeout(None)
        with open(os.path.join(keep, "registers"), "w") as f:
            f.write(regs)
        with open(os.path.join(keep, "lapic"), "w") as f:
            f.write("".join(f"CPU#{i}\n{a}" for i, a in sorted(apics.items())))
        # "CPU#N" starts each vCPU's dump; RIP and HLT sit on its first lines.
        for dump in re.split(r"^(?=CPU#\d)", regs, flags=re.M):
            m = re.match(r"CPU#(\d+)", dump)
            rip = re.search(r"RIP=(\w+)", dump)
            hlt = re.search(r"HLT=(\d)", dump)
            if not (m and rip and hlt):
                continue
            timer = [" ".join(ln.split()) for ln in apics.get(int(m.group(1)), "").splitlines()
                     if ln.split()[:1] in (["LVTT"], ["Timer"])]
            lines.append(f"vCPU {m.group(1)}: RIP={rip.group(1)} halted={hlt.group(1)}"
                         f" {'; '.join(timer) or '(no APIC timer lines)'}")
        if not shutil.which("gdb"):
            return lines + ["no gdb to take QEMU's backtraces"], qmp_answered
        # One attach: the vCPUs' state as QEMU holds it (VCPUS_GDB), then
        # every thread's backtrace, all while the process is stopped.
        mono = time.monotonic_ns()      # QEMU's host clock, just before the attach
        try:
            bt = subprocess.run(["gdb", "-batch", "-nx", "-p", str(self.proc.pid),
                                 "-x", VCPUS_GDB, "-ex", "thread apply all bt 16"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=120).stdout
        except subprocess.TimeoutExpired:
            return lines + ["gdb did not attach to QEMU within 120 s"], qmp_answered
        with open(os.path.join(keep, "backtraces"), "w") as f:
            f.write(bt)
        lines += [ln for ln in bt.splitlines() if re.match(r"vCPU \d+: ", ln)]
        offset = re.search(r"^virtual clock: host monotonic \+ (-?\d+) ns \(ticking 1\)", bt, re.M)
        if offset:
            lines.append(f"virtual clock at the attach: about {mono + int(offset.group(1))} ns")
        lines += [ln for ln in bt.splitlines() if re.match(r"(ttyS\d+|IOAPIC): ", ln)]
        threads = len(re.findall(r"^Thread \d+ ", bt, re.M))
        return lines + [f"backtraces of QEMU's {threads} threads in {keep}/backtraces"], qmp_answered

    # Magic SysRq keys a hang report sends, each with the line the guest's
    # kernel starts its answer with (tools/guest/init enables them all).
    SYSRQ = (("w", "sysrq: Show Blocked State"),
             ("l", "sysrq: Show backtrace of all active CPUs"),
             ("t", "sysrq: Show State"))

    def guest_sysrq(self, wait=30, quiet=3):
        """Ask the guest's kernel, with Magic SysRq keys pressed on its
        PS/2 keyboard, for its blocked tasks, its CPUs' backtraces and
        every task's state (SYSRQ), onto its console; wait until the
        console has been quiet for @quiet s after the last answer began,
        at most @wait s.  Returns lines for the log; the console's size
        before is kept in self.console_mark for the console tail."""
        console = self.consoles[-1]
        self.console_mark = os.path.getsize(console)
        try:
            self.qmp.sock.settimeout(10)
            for key, _ in self.SYSRQ:
                self.qmp.cmd("human-monitor-command",
                             **{"command-line": f"sendkey alt-sysrq-{key}"})
        except (OSError, RuntimeError, ValueError) as exc:
            return [f"no SysRq sent: {exc}"]
        finally:
            self.qmp.sock.settimeout(None)
        start = time.time()
        size, since, text = self.console_mark, start, ""
        while time.time() - start < wait:
            time.sleep(0.5)
            now = os.path.getsize(console)
            if now != size:
                size, since = now, time.time()
            with open(console, "rb") as f:
                f.seek(self.console_mark)
                text = f.read().decode(errors="replace")
            if self.SYSRQ[-1][1] in text and time.time() - since >= quiet:
                break
        # Each answer: the lines from its first line to the next answer's.
        starts = sorted((text.find(first), key) for key, first in self.SYSRQ
                        if first in text)
        if not starts:
            return [f"the guest answered no SysRq within {wait} s"]
        ends = [pos for pos, _ in starts[1:]] + [len(text)]
        counts = [f"{key} {text[pos:end].count(chr(10))} lines"
                  for (pos, key), end in zip(starts, ends)]
        return [f"the guest's SysRq answers ({', '.join(counts)}) are in its console, "
                f"from byte {self.console_mark}"]

    def stop(self):
        if self.qmp:
            if not self.boot:
                try:
                    self.qmp.cmd("quit")    # nothing else ends a paused QEMU
                except (OSError, RuntimeError, ValueError):
                    pass
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
                with open(self.consoles[-1], "rb") as f:
                    tail = f.read(self.console_mark).decode(errors="replace").splitlines()[-30:]
                print("# vmrun: guest console tail"
                      f"{' (before SysRq)' if self.console_mark else ''}:", flush=True)
                for ln in tail:
                    print(f"#   {ln}", flush=True)
            elif status != 0:
                print(f"# vmrun: guest command exited with {status}", flush=True)
            return 0 if status == 0 and healthy and backends else 1
        finally:
            self.cleanup()


def selftests_cmd(tests):
    return "./run_tests.sh " + " ".join(shlex.quote(t) for t in tests)
