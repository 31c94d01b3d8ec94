# SPDX-License-Identifier: GPL-2.0
"""make check: every test of the project, KTAP throughout.

Groups, in order: prepare (host packages, QEMU, kernel, module and test
builds), static (checkpatch, W=1 + sparse, QEMU checkpatch on the series),
qtest (QEMU's virtio-blk qtests), host-probe and host-vhost (host-side
scripts in selftests/host/), runner (the VM runner's own failure
detection), install (make install and dkms into the guest's module tree,
and a guest that must load the module by itself), debian-guest (the Debian
package in a real Debian guest: tools/vblk/debguest.py), and one group per guest
that the selftests declare (kselftests in a guest; tools/vblk/vmtests.py).
A missing prerequisite is a failed test, never a skip.  The last line is
"N passed, N failed"; the exit status is 0 only when nothing failed.
"""

import argparse
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from . import debguest, vmtests
from .paths import CACHE, FIRMWARE, PYTHON, QEMU_BUILD, QEMU_SRC, ROOT, SELFTESTS, TOOLS, \
    kernel_env

VMRUN = os.path.join(TOOLS, "vmrun")
PY = PYTHON


def out(line=""):
    print(line, flush=True)


class Group:
    """One top-level KTAP test whose subtests are the leaves we count."""

    def __init__(self, name):
        self.name = name
        self.results = []       # (ok, name, directive)

    def add(self, ok, name, directive="", log=""):
        """Record and print one result; a failure shows its log's tail."""
        self.results.append((ok, name, directive))
        for ln in log.splitlines()[-60:] if (log and not ok) else []:
            out(f"    # {ln}")
        out(f"    {'ok' if ok else 'not ok'} {len(self.results)} {name}"
            f"{' # ' + directive if directive else ''}")

    def comment(self, text):
        out(f"    # {text}")

    @property
    def passed(self):
        return sum(1 for ok, _, d in self.results if ok and not d.startswith("SKIP"))

    @property
    def failed(self):
        return sum(1 for ok, _, _ in self.results if not ok)


def sh(cmd, timeout=None, **kw):
    """Run a command; return (status, combined output)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout, shell=isinstance(cmd, str), **kw)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as exc:
        return 124, (exc.stdout or b"").decode(errors="replace") + "\n(timed out)"


# -- prepare ----------------------------------------------------------------
def prepare(g):
    """Install and build everything; stream long steps' progress."""
    state = {}
    steps = [
        ("host-setup", ["bash", f"{TOOLS}/host-setup.sh"]),
        ("guest-kernel", ["bash", f"{TOOLS}/get-kernel.sh"]),
        ("firmware", ["bash", f"{TOOLS}/get-firmware.sh"]),
        ("qemu-build", ["bash", f"{TOOLS}/build-qemu.sh"]),
        ("initramfs", ["bash", f"{TOOLS}/mkinitramfs.sh"]),
    ]
    for name, cmd in steps:
        g.comment(f"{name} ...")
        # stderr (progress) goes straight to the console; stdout is the result.
        p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        state[name] = p.returncode == 0
        g.add(p.returncode == 0, name, log=p.stdout)
        if name in ("host-setup", "guest-kernel") and p.returncode:
            break
    if state.get("guest-kernel"):
        rc, log = sh(["make", "-C", SELFTESTS])
        state["selftests-build"] = rc == 0
        g.add(rc == 0, "selftests-build", log=log)
        rc, log = sh(["bash", f"{TOOLS}/build-module.sh"])
        state["module"] = rc == 0
        g.add(rc == 0, "guest-module-build", log=log)
        # The same module under another name, beside the stock one (--driver both).
        rc, log = sh(["bash", f"{TOOLS}/build-module.sh", "--name", "vblk_bench"])
        state["bench-module"] = rc == 0
        g.add(rc == 0, "guest-module-build-vblk_bench", log=log)
        rc, log = sh(["bash", f"{TOOLS}/build-module.sh", f"{TOOLS}/tests/vmrun-warn"])
        state["warn-module"] = rc == 0
        g.add(rc == 0, "vmrun-warn-module", log=log)
    return state


# -- static -----------------------------------------------------------------
def static(g, state):
    srcs = sorted(p for p in glob.glob(os.path.join(ROOT, "guest", "*.[ch]"))
                  if not p.endswith(".mod.c"))
    if not state.get("guest-kernel"):
        g.add(False, "guest-checkpatch", "no kernel sources")
    elif not srcs:
        g.add(False, "guest-checkpatch", "no guest sources")
    else:
        ksrc = kernel_env()["KSRC"]
        rc, log = sh(["perl", f"{ksrc}/scripts/checkpatch.pl", "--strict", "--no-tree",
                      "--terse", "-f"] + srcs)
        g.add(rc == 0, "guest-checkpatch", log=log)
    if state.get("guest-kernel") and srcs:
        rc, log = sh(["bash", f"{TOOLS}/build-module.sh", "--sparse"])
        g.add(rc == 0, "guest-build-W1-sparse", log=log)
    else:
        g.add(False, "guest-build-W1-sparse", "nothing to build")

    # The guest's shell tests parse: a syntax error would surface only
    # in the guest that runs them, as a failed test.
    scripts = sorted(glob.glob(os.path.join(ROOT, "selftests", "*.sh")) +
                     glob.glob(os.path.join(ROOT, "tools", "bench", "*.sh")) +
                     glob.glob(os.path.join(TOOLS, "guest", "*.sh")) +
                     [os.path.join(TOOLS, "guest", "init")])
    bad = [f"{os.path.relpath(s, ROOT)}: {log.strip()}"
           for s in scripts for rc, log in [sh(["sh", "-n", s])] if rc]
    g.add(bool(scripts) and not bad, "shell-syntax", log="\n".join(bad))

    g.add("vmtest-declarations" not in state, "vmtest-declarations",
          log=state.get("vmtest-declarations", ""))

    # The documentation builds as the kernel's would: Sphinx, warnings fail.
    with tempfile.TemporaryDirectory(prefix="vblk-docs-", dir="/var/tmp") as docs:
        rc, log = sh([PY, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                      "-d", os.path.join(docs, ".doctrees"),
                      os.path.join(ROOT, "Documentation"), docs])
    g.add(rc == 0, "docs-sphinx", log=log)

    patches = sorted(glob.glob(os.path.join(ROOT, "host-qemu-patch", "0*.patch")))
    patches = [p for p in patches if not os.path.basename(p).startswith("0000-")]
    qsrc = QEMU_SRC
    if not patches:
        g.add(False, "qemu-checkpatch", "no patches in host-qemu-patch/")
        g.add(False, "qemu-series-applies-to-pristine", "no patches")
        return
    rc, log = sh([f"{qsrc}/scripts/checkpatch.pl"] + patches, cwd=qsrc)
    g.add(rc == 0, "qemu-checkpatch", log=log)
    # The series must apply with git am to upstream 10.0.2 as shipped.
    wt = tempfile.mkdtemp(prefix="vblk-pristine-", dir="/var/tmp")
    rc, log = sh(f"git -C {qsrc} worktree add -q --detach {wt} pristine && "
                 f"git -C {wt} -c user.name=check -c user.email=check@invalid "
                 f"am -q {' '.join(map(shlex.quote, patches))}")
    sh(f"git -C {qsrc} worktree remove --force {wt}; rm -rf {wt}; "
       f"git -C {qsrc} worktree prune")
    g.add(rc == 0, "qemu-series-applies-to-pristine", log=log)


# -- qtest ------------------------------------------------------------------
def qtest(g, state):
    build = QEMU_BUILD
    binary = os.path.join(build, "tests", "qtest", "qos-test")
    if not state.get("qemu-build") or not os.access(binary, os.X_OK):
        g.add(False, "qos-test", "QEMU build missing")
        return
    # QEMU needs -L for the firmware; libqtest takes the target from the
    # binary's name, so wrap it in a script of the same name.
    wrap = os.path.join(CACHE, "qemu", "qtest-bin", "qemu-system-x86_64")
    os.makedirs(os.path.dirname(wrap), exist_ok=True)
    with open(wrap, "w") as f:
        f.write(f"#!/bin/sh\nexec {build}/qemu-system-x86_64 "
                f"-L {FIRMWARE} \"$@\"\n")
    os.chmod(wrap, 0o755)
    env = dict(os.environ, PYTHON=PY, QTEST_QEMU_BINARY=wrap)
    rc, listing = sh([binary, "-l"], env=env, timeout=120)
    paths = [ln.strip() for ln in listing.splitlines()
             if "virtio-blk" in ln and ln.strip().startswith("/")]
    if rc or not paths:
        g.add(False, "qos-test-list", log=listing)
        return
    for path in paths:
        rc, log = sh([binary, "--tap", "-p", path], env=env, timeout=300)
        name = path.split("/pci-bus/", 1)[-1]
        g.add(rc == 0 and re.search(r"^ok ", log, re.M) is not None
              and "not ok" not in log, name, log=log)


# -- host-side tests --------------------------------------------------------
def host_script(g, state, name, needs_qemu):
    """A unittest script in selftests/host/: probe_matrix.py (the host's
    probe without a guest), vhost_user_blk_test.py (the test back end
    alone), bench_report_test.py (the benchmark's verdicts and reports),
    vmtests_test.py (how the selftests' guest declarations are read),
    bench_guest_test.py (the benchmark's runs in a guest, tiny).  Its TAP
    (pycotap) gives a test's output and failure after its result line;
    a skip is a failure."""
    stem = name[:-3]
    if needs_qemu and not (state.get("qemu-build") and state.get("firmware")):
        g.add(False, stem, "QEMU build missing")
        return
    script = os.path.join(ROOT, "selftests", "host", name)
    rc, log = sh([PY, script], timeout=600)
    plan = re.search(r"^1\.\.(\d+)$", log, re.M)
    results = []
    held, comments = None, []       # the last result, until its explanation is read

    def add():
        ok, test, skip = held
        results.append(ok and not skip)
        g.add(results[-1], test, log="\n".join(comments + ([skip] if skip else [])))

    for line in log.splitlines():
        m = re.match(r"^(ok|not ok) \d+ (?:__main__\.)?(.*?)(?: # (SKIP\b.*))?$", line)
        if m:
            if held:
                add()
            for c in comments if not held else []:
                g.comment(c)            # before any result
            held, comments = (m.group(1) == "ok", m.group(2), m.group(3)), []
        elif line.startswith("#"):
            comments.append(line[2:].rstrip() if line.startswith("# ") else line[1:].strip())
    if held:
        add()
    if not plan or int(plan.group(1)) != len(results) or (rc != 0 and all(results)):
        g.add(False, f"{stem}-complete", log=log)


# -- runner self-test -------------------------------------------------------
def vmrun(args, timeout=600):
    return sh([PY, VMRUN] + args, timeout=timeout)


def qemu_pids(tag):
    """The QEMU processes of the runs tagged @tag."""
    pids = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"qemu-system-x86_64") and \
                any(f"vblk-run-{tag}-".encode() in a for a in argv):
            pids.append(int(cmdline.split("/")[2]))
    return pids


def backend_faults(g, base):
    """The host action "vblk_host backend NAME break-used-id" reaches the
    vhost back end: its next used element has an out-of-range id, which
    the guest's virtio_ring reports ("id N out of range", a dev_err, no
    splat) before it marks the queue broken.  With the stock driver the
    read that got the bad id never ends, so it runs in the background (the
    disk's node is looked up before: reading its serial is a request too).
    The intended fault must not fail the run; a bad disk or fault name is
    refused."""
    brk = (". /selftests/test_common.sh; d=$(vblk_dev v) || exit 1; "
           "vblk_host backend v break-used-id || exit 1; "
           "dd if=$d of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null & "
           "for i in $(seq 20); do dmesg | grep 'out of range' && exit 0; sleep 0.5; done; "
           "echo '# no out-of-range id in dmesg'; exit 1")
    vhost = ["--driver", "stock", "--disk", "v:vhost:size=8M", "--timeout", "120"]
    rc, log = vmrun(vhost + ["--cmd", brk])
    wrote = re.search(r"fault: wrote used id (\d+) on queue \d+", log)
    g.add(rc == 0 and wrote is not None and "faults=1" in log
          and f"id {wrote.group(1)} out of range" in log,
          "backend-fault-breaks-used-ring", log=log)

    # A disk that is not there or not vhost, or an unknown fault: error replies.
    bad = (". /selftests/test_common.sh; for a in 'nosuch break-used-id' "
           "'r break-used-id' 'v no-such-fault'; do "
           "vblk_host backend $a && exit 1; done; exit 0")
    rc, log = vmrun(base + ["--disk", "v:vhost:size=8M", "--cmd", bad])
    g.add(rc == 0 and "no disk 'nosuch'" in log and "'r' is ram, not vhost" in log
          and "unknown fault 'no-such-fault'" in log and "faults=0" in log,
          "backend-fault-refused", log=log)


def signal_qemu(args, tag, sig):
    """vmrun @args with a guest that sleeps; once it is up, send @sig to its
    QEMU (tagged @tag).  Returns vmrun's status, its log, and whether the
    signal was sent."""
    p = subprocess.Popen([PY, VMRUN] + args + ["--cmd", "echo guest-up; sleep 600"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log, sent = "", False
    for line in p.stdout:
        log += line
        if "guest-up" in line and not sent:
            for pid in qemu_pids(tag):
                os.kill(pid, sig)
                sent = True
    return p.wait(), log, sent


def runner(g, state):
    if not (state.get("qemu-build") and state.get("initramfs")):
        g.add(False, "runner", "QEMU or initramfs missing")
        return
    base = ["--driver", "stock", "--disk", "r:ram:size=8M", "--timeout", "120"]
    # Tag these runs so the clean-up check ignores other runs on the machine.
    os.environ["VBLK_RUN_TAG"] = tag = f"selftest{os.getpid()}"

    rc, log = vmrun(base + ["--cmd", "echo hello-from-guest"])
    g.add(rc == 0 and "hello-from-guest" in log, "passing-command-passes", log=log)

    rc, log = vmrun(base + ["--disk", "l:loop-rot:size=8M", "--cmd", "exit 3"])
    g.add(rc != 0 and "exited with 3" in log, "failing-command-fails", log=log)

    fail = os.path.join(TOOLS, "tests", "always_fail.sh")
    rc, log = vmrun(base + ["--file", f"{fail}:/selftests/always_fail.sh",
                            "--selftests", "boot.sh always_fail.sh"])
    g.add(rc != 0 and re.search(r"^not ok 2 ", log, re.M) is not None
          and re.search(r"^ok 1 ", log, re.M) is not None,
          "failing-selftest-fails", log=log)

    # A test that leaves a child holding its output: the in-guest runner
    # kills it, after a test that passed as after one killed at its
    # timeout, and goes on to the next test before the run's timeout.
    left = os.path.join(TOOLS, "tests", "leaves_child.sh")
    rc, log = vmrun(base + ["--file", f"{left}:/selftests/leaves_child_ok.sh",
                            "--file", f"{left}:/selftests/leaves_child.sh",
                            "--selftests", "leaves_child_ok.sh leaves_child.sh:15 boot.sh"])
    killed = re.findall(r"^# killed what the test left behind:( \d+\(sleep\))+$", log, re.M)
    g.add(rc != 0 and re.search(r"^ok 1 selftests: vblk: leaves_child_ok\.sh$", log, re.M)
          and re.search(r"^not ok 2 selftests: vblk: leaves_child\.sh # TIMEOUT 15s$", log, re.M)
          and re.search(r"^ok 3 ", log, re.M) and len(killed) == 2
          and "still there" not in log and "timeout after" not in log,
          "leftover-child-killed", log=log)

    # A test killed while it holds udev (udevd stopped): the in-guest
    # runner lets udevd go on, and the next test finds it handling events.
    held = os.path.join(TOOLS, "tests", "holds_udev.sh")
    rc, log = vmrun(base + ["--file", f"{held}:/selftests/holds_udev.sh",
                            "--file", f"{held}:/selftests/holds_udev_after.sh",
                            "--selftests", "holds_udev.sh:20 holds_udev_after.sh"])
    g.add(rc != 0 and "# udev held" in log
          and re.search(r"^not ok 1 selftests: vblk: holds_udev\.sh # TIMEOUT 20s$", log, re.M)
          and re.search(r"^# restored after holds_udev\.sh: udevd \(\d+\) runs again$", log, re.M)
          and re.search(r"^ok 2 selftests: vblk: holds_udev_after\.sh$", log, re.M),
          "udev-hold-undone-after-timeout", log=log)

    ko = os.path.join(TOOLS, "tests", "vmrun-warn", "vmrun_warn.ko")
    rc, log = vmrun(base + ["--file", ko, "--cmd", "insmod /vblk/files/vmrun_warn.ko"])
    g.add(rc != 0 and "reported problems" in log and "WARNING:" in log,
          "guest-warn-fails", log=log)

    classes = ["--disk", "f:file:size=8M", "--disk", "ln:loop-nonrot:size=8M",
               "--disk", "lr:loop-rot:size=8M", "--disk", "p:part:size=8M",
               "--disk", "n:null:size=8M,latency-ns=1000", "--disk", "v:vhost:size=8M"]
    rc, log = vmrun(base + classes + ["--selftests", "boot.sh"])
    g.add(rc == 0 and re.search(r"^ok 1 ", log, re.M) is not None,
          "every-disk-class-boots", log=log)

    # fill=1: the guest reads the pattern from the first byte, not a hole.
    show = ("for b in /sys/block/vd*; do [ \"$(cat $b/serial)\" = $S ] && "
            "od -An -tx1 -N4 -j256 /dev/${b##*/}; done")
    rc, log = vmrun(base + ["--disk", "f:file:size=8M,fill=1",
                            "--cmd", f"S=r; {show}; echo =; S=f; {show}"])
    g.add(rc == 0 and re.search(r"^ 00 00 00 00\n=\n 00 01 02 03$", log, re.M) is not None,
          "fill-writes-the-image", log=log)
    rc, log = vmrun(base + ["--disk", "n:null:size=8M,fill=1", "--cmd", "true"])
    g.add(rc == 2 and "fill=1 is for disks backed by an image file" in log,
          "fill-refused-without-image", log=log)

    backend_faults(g, base)

    # What the guest writes while it migrates reaches the runner whole and
    # in order: a writer ticks on the control channel from before the
    # migration to after it, then says how many ticks it wrote; the lines
    # "migrating" and "migrated" around the request show that some ticks
    # were written while it ran (on the source while its memory was copied),
    # however fast the host.
    ticker = (". ./test_common.sh; "
              "(i=0; while [ ! -e /tmp/stop ]; do i=$((i + 1)); echo tick $i; sleep 0.01; done; "
              "echo ticks $i) & sleep 1; echo migrating; vblk_host migrate >/dev/null; rc=$?; "
              "echo migrated; sleep 1; touch /tmp/stop; wait; exit $rc")
    rc, log = vmrun(base + ["--cmd", ticker])
    total = re.search(r"^ticks (\d+)$", log, re.M)
    ticks = re.findall(r"^tick (\d+)$", log, re.M)
    during = re.search(r"^migrating\n(.*\n)*?tick \d+\n(.*\n)*?migrated$", log, re.M)
    g.add(rc == 0 and total is not None and during is not None and
          ticks == [str(i) for i in range(1, int(total.group(1)) + 1)],
          "output-across-migration-kept", log=log)

    # QEMU dying under the guest is named, with its signal.
    rc, log, killed = signal_qemu(base, tag, signal.SIGSEGV)
    g.add(rc != 0 and killed and "QEMU was killed by signal 11 (SIGSEGV)" in log,
          "qemu-crash-named", log=log)
    # ... and where it was: the core is kept and its backtrace printed.
    g.add(re.search(r"core dump kept in .*\n.*\n.*Program terminated with signal "
                    r"SIGSEGV.*\n.*#0 ", log) is not None,
          "qemu-crash-backtrace", log=log)

    t0 = time.time()
    rc, log = vmrun(base[:-1] + ["25", "--cmd", "sleep 600"])
    g.add(rc != 0 and "timeout after 25 s" in log and time.time() - t0 < 90,
          "timeout-fails", log=log)
    # ... and leaves what QEMU's vCPUs and threads were doing.
    g.add(re.search(r"hang report kept in .*\n(.*\n)*.*vCPU 0: RIP=\w+ halted=[01] LVTT .*; Timer "
                    r"(.*\n)*.*vCPU 0: halted=[01] stop=[01] stopped=[01] .*interrupt_request=\w+ "
                    r"(.*\n)*.*vCPU 1: APIC irr=[0-9a-f]{64} isr=[0-9a-f]{64} timer_expiry=-?\d+ "
                    r"(.*\n)*.*virtual clock at the attach: about \d+ ns"
                    r"(.*\n)*.*ttyS1: ier=\w+ iir=\w+ lsr=\w+ "
                    r"(.*\n)*.*backtraces of QEMU's \d+ threads"
                    r"(.*\n)*.*the guest's SysRq answers \(w \d+ lines, l \d+ lines, t \d+ lines\)",
                    log) is not None and "no host action was asked for" in log,
          "timeout-hang-report", log=log)
    # A QEMU that answers nothing (stopped) still gets its threads' backtraces.
    rc, log, stopped = signal_qemu(base[:-1] + ["25"], tag, signal.SIGSTOP)
    g.add(rc != 0 and stopped and re.search(r"QMP did not answer: .*\n(.*\n)*.*backtraces of "
                                            r"QEMU's \d+ threads", log) is not None,
          "timeout-hang-report-stopped-qemu", log=log)

    del os.environ["VBLK_RUN_TAG"]
    left = glob.glob(f"/var/tmp/vblk-run-{tag}-*") + glob.glob(f"/dev/shm/vblk-{tag}-*")
    _, loops = sh(["losetup", "-a"])
    stray = [ln for ln in loops.splitlines() if f"/vblk-run-{tag}-" in ln]
    procs = qemu_pids(tag)
    g.add(not left and not stray and not procs, "cleans-up",
          log=f"left: {left}\nloops: {stray}\nprocesses: {procs}")


# -- make demo --------------------------------------------------------------
def demo(g, state):
    """make demo, short (--seconds 1): every disk of the demo present in
    its table and its JSON, with the host's probe, the path our driver
    chose at probe (io_path=auto) and a figure under each of the three
    drivers, each run on the driver and path it names; the host's view
    taken once its probe reported, before the guest binds our module, and
    the same at the end of the run; every disk offers the bit and the auto
    path follows the medium the host reports, and the cases that do not
    depend on how fast a busy host answers go the way they must (null-co
    at 2 ms and the rotational loop device on request; the ram disk found
    to be memory, non-rotating, and measured); the chart is a PNG.
    Nothing compares speeds."""
    from . import demo as demo_mod
    from .paths import BENCH_MODULE
    names = ["demo-runs", "demo-report-names-its-files", "demo-chart-png", "demo-json",
             "demo-every-disk-in-table", "demo-host-probe", "demo-auto-path",
             "demo-auto-follows-host", "demo-clear-cases", "demo-three-drivers"]
    if not (state.get("qemu-build") and state.get("initramfs") and
            state.get("selftests-build") and state.get("bench-module")):
        for name in names:
            g.add(False, name, "QEMU, initramfs, selftests or vblk_bench missing")
        return
    work = tempfile.mkdtemp(prefix="vblk-demo-check-", dir="/var/tmp")
    try:
        rc, log = sh([PY, os.path.join(TOOLS, "demo.py"), "--seconds", "1", "--out", work],
                     timeout=1800)
        g.add(rc == 0, "demo-runs", log=log)
        png, jpath = os.path.join(work, "demo.png"), os.path.join(work, "demo.json")
        g.add(re.search(rf"^chart: +{re.escape(png)}$", log, re.M) is not None and
              re.search(rf"^results: +{re.escape(jpath)}$", log, re.M) is not None,
              "demo-report-names-its-files", log=log)
        try:
            with open(png, "rb") as f:
                head = f.read(8)
            g.add(head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 10000,
                  "demo-chart-png", log=f"{png}: {head!r}")
        except OSError as exc:
            g.add(False, "demo-chart-png", log=str(exc))
        try:
            with open(jpath) as f:
                res = json.load(f)
            disks = {d["name"]: d for d in res["disks"]}
            g.add(list(disks) == [s.split(":")[0] for s in demo_mod.DISKS]
                  and res["seconds"] == 1 and res["ok"] is True, "demo-json",
                  log=json.dumps(res, indent=1))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            for name in names[3:]:
                g.add(False, name, log=f"{jpath}: {exc!r}\n{log}")
            return
        # Both tables (host and guest; fio) have a row for every disk.
        rows = {name: len(re.findall(rf"^{name} ", log, re.M)) for name in disks}
        g.add(len(disks) == len(demo_mod.DISKS) and all(n == 2 for n in rows.values()),
              "demo-every-disk-in-table", log=f"rows per disk: {rows}\n{log}")
        # The host's view is taken once its probe has reported (the guest
        # binds our module only then) and again at the end: the same.
        bad = [n for n, d in disks.items()
               if not (isinstance(d["host"].get("offered"), bool) and d["host"].get("media")
                       and d["host"].get("reason") and "latency_us" in d["host"])
               or d["host"]["reason"] in demo_mod.PROBE_UNFINISHED
               or d.get("host_end") != d["host"]]
        g.add(not bad, "demo-host-probe",
              log="\n".join(f"{n}: host {disks[n]['host']}, at the end {disks[n].get('host_end')}"
                            for n in bad) + f"\n{log}")
        bad = [n for n, d in disks.items()
               if d["auto"].get("path") not in ("bio", "request")
               or not d["auto"].get("reason") or d["auto"].get("driver") != BENCH_MODULE]
        g.add(not bad, "demo-auto-path", log=f"no auto path for {bad}\n{log}")
        # The guest follows the medium the host reports (every demo disk
        # offers the bit): the bio path for a non-rotating medium
        # (rotation_rate 1) whose read latency is not reported or at most
        # the module's default bio_latency_us (200), the request path
        # otherwise.
        def want_path(h):
            fast = h.get("latency_us", 0) == 0 or h.get("latency_us", 0) <= 200
            return "bio" if h.get("rotation_rate") == 1 and fast else "request"
        bad = [f"{n}: host {d['host']}, guest {d['auto']}"
               for n, d in disks.items()
               if (d["auto"].get("path"), d["auto"].get("bio_bit"))
               != (want_path(d["host"]), "1")]
        g.add(not bad, "demo-auto-follows-host", log="\n".join(bad))
        # The request path on a rotational disk and on 2 ms storage; the
        # ram disk measured as memory (whether its latency is under the
        # limit depends on how fast a busy host reads: not checked).
        clear = {"nullslow": "request", "looprot": "request"}
        bad = [f"{n}: host {disks.get(n, {}).get('host')}, guest {disks.get(n, {}).get('auto')}"
               for n, path in clear.items()
               if n not in disks or want_path(disks[n]["host"]) != path
               or disks[n]["auto"].get("path") != path]
        ram = disks.get("ram", {}).get("host", {})
        if (ram.get("media"), ram.get("rotation_rate"), ram.get("reason")) != \
                ("memory", 1, "measured") or not ram.get("latency_us"):
            bad.append(f"ram: host {ram}, want memory, rotation_rate 1, measured")
        g.add(not bad, "demo-clear-cases", log="\n".join(bad))
        expect = {"stock": ("virtio_blk", "stock"), "request": (BENCH_MODULE, "request"),
                  "bio": (BENCH_MODULE, "bio")}
        bad = []
        for n, d in disks.items():
            for job in res["jobs"]:
                for drv, (module, path) in expect.items():
                    r = d["runs"].get(job, {}).get(drv) or {}
                    if (r.get("driver"), r.get("path")) != (module, path) or \
                            r.get("status") != 0 or not isinstance(r.get("iops"), int) \
                            or r["iops"] <= 0:
                        bad.append(f"{n} {job} {drv}: {r}")
        g.add(not bad and set(res["jobs"]) == {"randread"}, "demo-three-drivers",
              log="\n".join(bad))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- installation -----------------------------------------------------------
def install(g, state, timeout):
    """make install (INSTALL_MOD_PATH and DESTDIR) and dkms add/build/install
    into copies of the guest's module tree (tools/install-tree.sh), make
    uninstall and dkms remove after them, then a
    guest that loads no driver itself must end up with the adaptive module
    (selftests/vblk_install.sh)."""
    tests = ["vblk_install.sh", "boot.sh", "data_integrity"]
    if not (state.get("guest-kernel") and state.get("initramfs")):
        for name in ("make-install", "destdir-install", "dkms-install", "make-uninstall",
                     "dkms-remove"):
            g.add(False, name, "guest kernel or initramfs missing")
        return
    kver = kernel_env()["KVER"]
    work = tempfile.mkdtemp(prefix="vblk-install-", dir="/var/tmp")
    try:
        trees = {}
        for method in ("make", "destdir", "dkms"):
            tree = os.path.join(work, method)
            rc, log = sh(["bash", f"{TOOLS}/install-tree.sh", method, tree], timeout=600)
            g.add(rc == 0, f"{method}-install", log=log)
            trees[method] = tree if rc == 0 else None
        # Removal: the tree must resolve virtio_blk to the stock module again.
        for method in ("make-uninstall", "dkms-remove"):
            rc, log = sh(["bash", f"{TOOLS}/install-tree.sh", method,
                          os.path.join(work, method)], timeout=600)
            g.add(rc == 0, method, log=log)
        if not (trees["make"] and trees["dkms"]):
            for t in tests:
                g.add(False, t, "no installed tree to boot")
            return
        rules = "/lib/udev/rules.d/80-drivers.rules"
        args = ["--driver", "none", "--disk", "d1:ram:size=64M", "--disk", "d2:file:size=64M",
                "--file", f"{trees['make']}/lib/modules/{kver}:/lib/modules/{kver}",
                "--file", f"{trees['dkms']}/lib/modules/{kver}:/vblk/files/dkms-modules",
                "--file", "/bin/kmod", "--file", f"{rules}:{rules}"]
        guest_tests(g, state, args, tests, timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- guest kselftests -------------------------------------------------------
def vm_groups(state):
    """The guests to boot (vmtests.py).  Declarations that cannot be
    used fail the static group's vmtest-declarations test, and no guest
    boots then."""
    try:
        return vmtests.guests(SELFTESTS)
    except vmtests.DeclError as e:
        state["vmtest-declarations"] = str(e)
        return []


def guest_tests(g, state, args, tests, timeout):
    driver = args[args.index("--driver") + 1] if "--driver" in args else "ours"
    module = {"ours": "module", "both": "bench-module"}.get(driver)
    if not (state.get("qemu-build") and state.get("initramfs") and
            state.get("selftests-build")):
        for t in tests:
            g.add(False, t, "bench not ready")
        return
    if module and not state.get(module):
        for t in tests:
            g.add(False, t, f"{module} did not build")
        return
    # The host's limit comes after those of the tests in the guest.
    timeout = max(timeout, vmtests.run_limit(SELFTESTS, tests))
    p = subprocess.Popen([PY, VMRUN, "--timeout", str(timeout)] + args +
                         ["--selftests", " ".join(tests)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = {}
    pending = []
    took = ""
    for line in p.stdout:
        line = line.rstrip("\n")
        m = re.match(r"^(ok|not ok) (\d+) selftests: vblk: (\S+)(.*)$", line)
        tk = re.match(r"^# \S+ took (\d+ s of its \d+ s)$", line)
        if m:
            ok = m.group(1) == "ok"
            directive = m.group(4).split("#", 1)[1].strip() if "#" in m.group(4) else ""
            if directive.startswith("SKIP"):
                ok = False      # a skipped test did not pass: count it as failed
            for ln in pending[-150:] if not ok else []:
                g.comment(ln)
            pending = []
            seen[m.group(3)] = ok
            g.add(ok, m.group(3), directive or took)
            took = ""
        elif tk:
            took = tk.group(1)
        elif line.startswith("# vmrun:") or line.startswith("#   "):
            g.comment(line[2:])     # the runner's: shown at once, once
        elif line.startswith("#"):
            pending.append(line[2:])
    rc = p.wait()
    names = [t.split(":")[0] for t in tests]     # NAME:TIMEOUT
    if any(t not in seen for t in names):
        for ln in pending[-150:]:    # what the unfinished test had said
            g.comment(ln)
    for t in names:
        if t not in seen:
            g.add(False, t, "no result (guest died or timed out)")
    if rc != 0 and all(seen.get(t) for t in names):
        g.add(False, "guest-health", "the run failed after its tests passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", help="run only groups whose name contains this "
                    "(several: separated by commas)")
    ap.add_argument("--timeout", type=int, default=600, help="per guest run, seconds, at least (a guest gets "
                    "the limits of its tests and the time of a boot if more)")
    opts = ap.parse_args()

    start = time.time()
    out("TAP version 13")
    groups = []

    def run_group(name, fn, *args):
        if opts.only and name != "prepare" and \
                not any(w in name for w in opts.only.split(",")):
            return
        g = Group(name)
        out(f"# {name}")
        out("    KTAP version 1")
        t0 = time.time()
        fn(g, *args)
        out(f"    1..{len(g.results)}")
        ok = g.failed == 0 and g.results
        groups.append(g)
        out(f"{'ok' if ok else 'not ok'} {len(groups)} {name} "
            f"# {g.passed} passed, {g.failed} failed, {time.time() - t0:.0f} s")

    state = {}
    guests = vm_groups(state)
    run_group("prepare", lambda g: state.update(prepare(g)))
    run_group("static", static, state)
    run_group("qtest", qtest, state)
    run_group("host-probe", host_script, state, "probe_matrix.py", True)
    run_group("host-vhost", host_script, state, "vhost_user_blk_test.py", False)
    run_group("host-bench", host_script, state, "bench_report_test.py", False)
    run_group("host-vmtests", host_script, state, "vmtests_test.py", False)
    run_group("bench-guest", host_script, state, "bench_guest_test.py", True)
    run_group("runner", runner, state)
    run_group("demo", demo, state)
    run_group("install", install, state, opts.timeout)
    run_group("debian-guest", debguest.run, state)
    for name, args, tests in guests:
        run_group(f"guest:{name}", guest_tests, state, args, tests, opts.timeout)
    out(f"1..{len(groups)}")
    passed = sum(g.passed for g in groups)
    failed = sum(g.failed for g in groups)
    out(f"# make check took {time.time() - start:.0f} s")
    out(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1

