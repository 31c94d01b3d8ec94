#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""make bench: fio in guests under the patched QEMU (TCG), comparing the
stock in-tree virtio_blk with our driver's request path, bio path and
automatic choice.

Every figure is a ratio measured inside one run:

- wall-clock IOPS and latency from alternating runs: one boot per round
  attaches the disks of every device class, loads the stock virtio_blk
  and ours (built as vblk_bench) side by side, and runs every cell once
  per driver variant in turn (stock, request, bio, auto; the order
  rotates by one each round), rebinding the disks between runs; medians
  and spreads over the rounds are reported, a ratio is the median of the
  ratios within each round.
  Runs of the variants are seconds apart: on this shared host the speed
  of the guest drifts by tens of percent within minutes, far more than
  the drivers differ;
- guest instructions per I/O from QEMU's libinsn TCG plugin, as the
  difference of two boots doing N1 and N2 I/Os of the same cell:
  (insn(N2) - insn(N1)) / (ios(N2) - ios(N1));
- the cost of the host's storage probe: QEMU start to QMP-ready with
  bio=auto against bio=off on the same disk (only when the QEMU binary
  knows the property).

A cell is (device class, workload, queue depth), 4k blocks throughout.
Results go to OUT: results.json (every raw figure), results.md (tables),
results.png (chart) and results.rst; a full run also writes the results
page Documentation/block/virtio_blk-adaptive-results.rst (with --quick,
only with --doc, and then labelled as a smoke run).

The machine is shared and has 2 cores: figures from a busy machine are
noise, not results.  Run the full benchmark on a quiet machine.
"""

import argparse
import datetime
import importlib.util
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOOLS)
from vblk import paths  # noqa: E402
from vblk.disks import Disk  # noqa: E402
from vblk.qmp import QMP  # noqa: E402
from vblk.vm import VM, prepare as prepare_guest  # noqa: E402

ROOT = paths.ROOT
BENCH = os.path.join(TOOLS, "bench")
GUEST_SCRIPT = os.path.join(BENCH, "guest-bench.sh")
QEMU_BUILD = paths.QEMU_BUILD
QEMU = os.path.join(QEMU_BUILD, "qemu-system-x86_64")
LIBINSN = os.path.join(QEMU_BUILD, "tests", "tcg", "plugins", "libinsn.so")
# Our module under another name, to load beside the stock virtio_blk.
BENCH_MODULE = paths.BENCH_MODULE
BENCH_KO = paths.BENCH_KO
DOC = os.path.join(ROOT, "Documentation", "block", "virtio_blk-adaptive-results.rst")
BS = 4096
# Mean CPUs others may keep busy during a run before its page says "busy"
OTHER_LOAD_MAX = 0.2

# Device classes: vmrun disk class and options.
#   ram   raw file on the host's tmpfs
#   fast  host loop device, queue/rotational = 0, backed by the page cache
#         (both written in full first: no read of a hole, no write that
#         allocates, whichever cell runs first)
#   slow  2 ms per request, one queue of 4 entries: requests wait in the
#         guest, where the request path can merge them
CLASSES = {
    "ram": "ram:size=256M,fill=1",
    "fast": "loop-nonrot:size=256M,fill=1",
    "slow": "null:size=1G,latency-ns=2000000,dev.num-queues=1,dev.queue-size=4",
}
WORKLOADS = {"seq-read": "read", "seq-write": "write",
             "rnd-read": "randread", "rnd-write": "randwrite"}
DEPTHS = (1, 16)
# Driver variants: vmrun driver and virtio_blk module parameters.
DRIVERS = {
    "stock": ("stock", ""),
    "request": ("ours", "io_path=request"),
    "bio": ("ours", "io_path=bio"),
    "auto": ("ours", "io_path=auto"),
}
# Defaults of a full run and of --quick (a smoke test of every step).
# Instruction counts need ~200k I/Os between the two boots to stand out of
# the boots' own variation (~1% of ~5 G instructions): by default they
# are taken for the cells of target P1 only.
# Rounds are many and runs short because the host's speed drifts within
# seconds: the runs of one round pair better the closer they are.
FULL = {"rounds": 8, "runtime": 4, "workloads": list(WORKLOADS),
        "insn_ios": (20000, 220000), "insn_workloads": ["rnd-read"],
        "insn_depths": list(DEPTHS), "probe_reps": 10}
QUICK = {"rounds": 1, "runtime": 1, "workloads": ["seq-read", "rnd-read"],
         "insn_ios": (1000, 41000), "insn_workloads": ["rnd-read"],
         "insn_depths": [16], "probe_reps": 3}


def log(msg):
    print(f"bench: {msg}", flush=True)


class Cell:
    """One measured combination: device class, workload, queue depth."""

    def __init__(self, cls, workload, depth):
        self.cls, self.workload, self.depth = cls, workload, depth
        self.id = f"{cls}-{workload}-qd{depth}"
        self.label = f"{cls} {workload} 4k QD{depth}"
        self.is_read = WORKLOADS[workload].endswith("read")

    def fio_args(self, runtime=None, ios=None):
        """fio options: time-based for @runtime seconds, or exactly @ios
        I/Os (wrapping around the disk as often as needed)."""
        args = (f"--rw={WORKLOADS[self.workload]} --bs={BS} --ioengine=libaio "
                f"--direct=1 --iodepth={self.depth}")
        if ios:
            return args + f" --number_ios={ios} --io_size={ios * BS}"
        return args + f" --time_based --runtime={runtime}"


def prepare():
    """Build or fetch everything a guest run needs, and the chart's library."""
    prepare_guest()
    subprocess.run(["bash", os.path.join(TOOLS, "build-module.sh"), "--name", BENCH_MODULE],
                   check=True)
    if not os.path.exists(LIBINSN):
        raise RuntimeError(f"{LIBINSN} missing: run tools/build-qemu.sh")
    if importlib.util.find_spec("matplotlib") is None:
        subprocess.run(["apt-get", "install", "-y", "python3-matplotlib"], check=True,
                       stdout=subprocess.DEVNULL)


def host_knows_bio():
    """Whether this QEMU's virtio-blk-pci has the host series' bio property."""
    out = subprocess.run([QEMU, "-device", "virtio-blk-pci,help"], capture_output=True,
                         text=True).stdout
    return any(line.strip().startswith("bio=") for line in out.splitlines())


def cpu_seconds():
    """(busy CPU seconds of the whole host, CPU seconds of this process and
    its reaped children) so far.  Their growth over a run, the first less
    the second, is what everything else on the host used meanwhile: a
    load average would count the bench's own guests too."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: all but idle, iowait
    busy = sum(fields[:8]) - fields[3] - fields[4]
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return busy / os.sysconf("SC_CLK_TCK"), own


def other_load(start, end, seconds):
    """Mean number of CPUs kept busy by others between two cpu_seconds()."""
    return max(0.0, (end[0] - start[0]) - (end[1] - start[1])) / seconds if seconds else 0.0


def describe_host(host_bio):
    """Versions and state worth keeping next to the figures."""
    def cmd(args):
        try:
            return subprocess.run(args, capture_output=True, text=True,
                                  cwd=ROOT).stdout.strip()
        except OSError:
            return ""
    kenv = paths.kernel_env()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": cmd(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(cmd(["git", "status", "--porcelain", "--", "guest", "tools",
                               "host-qemu-patch"])),
        "qemu": cmd([QEMU, "--version"]).splitlines()[0] if os.path.exists(QEMU) else "",
        "guest_kernel": os.path.basename(kenv.get("VMLINUZ", "")),
        "host_bio_property": host_bio,
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }


def guest_results(lines):
    """Parse guest-bench.sh output: {cell id: {header keys, status, fio}}."""
    results = {}
    cur = body = None
    for line in lines:
        if line.startswith("BENCH-BEGIN "):
            fields = line.split()
            cur = {"id": fields[1]}
            # "reason" may hold spaces ("module parameter"): split on keys.
            for key, val in re.findall(r"(\w+)=(.*?)(?= \w+=|$)", " ".join(fields[2:])):
                cur[key] = val
            body = []
        elif line.startswith("BENCH-END ") and cur is not None:
            cur["status"] = int(line.split("status=")[1])
            if cur["status"] == 0:
                try:
                    cur["fio"] = json.loads("\n".join(body))
                except ValueError:
                    cur["status"] = -1
            else:
                cur["log"] = body
            results[cur["id"]] = cur
            cur = body = None
        elif body is not None:
            body.append(line)
    return results


def fio_figures(cell, res):
    """IOPS, I/O count and latency (µs) of one cell's fio report."""
    job = res["fio"]["jobs"][0]["read" if cell.is_read else "write"]
    pct = job.get("clat_ns", {}).get("percentile", {})
    fig = {"iops": job["iops"], "ios": job["total_ios"],
           "lat_mean_us": job["lat_ns"]["mean"] / 1000,
           "clat_p99_us": pct.get("99.000000", 0) / 1000,
           "path": res.get("path"), "reason": res.get("reason"),
           "bio_bit": res.get("bio_bit")}
    # The guest's CPU time around the run, in USER_HZ (100 on x86) ticks.
    if res.get("cpu_busy", "").isdigit() and job["total_ios"]:
        fig["busy_us_per_io"] = int(res["cpu_busy"]) * 10000 / job["total_ios"]
    return fig


def host_probe(qmp, name):
    """The host's bio decision for disk NAME (its bio-probe property)."""
    try:
        return qmp.cmd("qom-get", path=f"/machine/peripheral/{name}", property="bio-probe")
    except RuntimeError as exc:
        return {"error": str(exc)}


def boot(driver, classes, cells_text, timeout, host_bio, qemu_args=(), append="",
         env=None, output=None, host_actions=None):
    """Boot one guest with a disk per class, run the cells, return
    (parsed results, the host's decision per class, error text or None).
    @driver is a variant of DRIVERS, or "both" (the stock driver and
    ours side by side; @env's BENCH_VARIANTS says which to run).
    @append, @env and @host_actions go to vblk.vm.VM; @output, a list,
    receives the guest's raw output."""
    kind, modparams = DRIVERS.get(driver, (driver, ""))
    disks = []
    for cls in classes:
        spec = f"{cls}:{CLASSES[cls]}"
        if host_bio:
            spec += ",dev.bio=auto"
        disks.append(Disk(spec))
    tmp = tempfile.mkdtemp(prefix="vblk-bench-")
    try:
        cells_file = os.path.join(tmp, "cells")
        with open(cells_file, "w") as f:
            f.write(cells_text)
        vm = VM(disks, driver=kind, modparams=modparams,
                cmd="sh /vblk/files/guest-bench.sh", timeout=timeout,
                qemu_args=qemu_args, echo=False, udev=False, append=append,
                env=env, host_actions=host_actions,
                module=BENCH_KO if kind == "both" else None,
                files=[GUEST_SCRIPT, f"{cells_file}:/vblk/files/cells"])
        probes = {}
        try:
            vm.start()
            if host_bio:
                probes = {cls: host_probe(vm.qmp, cls) for cls in classes}
            status = vm.wait()
            vm.stop()
            healthy = vm.check_console()
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            return {}, probes, str(exc)
        finally:
            vm.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    error = None
    if status is None:
        error = "guest timed out or died"
    elif status != 0:
        error = f"guest command exited with {status}"
    if not healthy:
        error = f"guest kernel reported: {vm.splats[0]}"
    if output is not None:
        output.extend(vm.output)
    return guest_results(vm.output), probes, error


def round_order(drivers, rnd):
    """The order the variants run in, in round @rnd (from 1): rotated one
    place per round, so that each variant runs first, second, ... equally
    often over len(@drivers) rounds (a run's place in the sequence tells:
    on the fast class the host's page cache fills up with every write
    run, and a fixed order kept the fourth variant 10% behind the third
    on the same code)."""
    k = (rnd - 1) % len(drivers)
    return drivers[k:] + drivers[:k]


def measure_wallclock(opts, cells, data, save):
    """One boot per round, every cell run by every variant in turn; append
    one record per (round, driver, cell)."""
    classes = sorted({c.cls for c in cells}, key=list(CLASSES).index)
    text = "".join(f"{c.id} {c.cls} {c.fio_args(runtime=opts.runtime)}\n" for c in cells)
    runs = len(cells) * len(opts.drivers)
    timeout = 180 + runs * (opts.runtime + 30)
    for rnd in range(1, opts.rounds + 1):
        t0 = time.time()
        env = {"BENCH_VARIANTS": " ".join(round_order(opts.drivers, rnd))}
        results, probes, error = boot("both", classes, text, timeout,
                                      data["meta"]["host_bio_property"], env=env)
        ok = 0
        for c in cells:
            for driver in opts.drivers:
                rec = {"round": rnd, "driver": driver, "cell": c.id,
                       "host_probe": probes.get(c.cls)}
                res = results.get(f"{c.id}/{driver}")
                if res and res["status"] == 0:
                    rec.update(fio_figures(c, res))
                    ok += 1
                elif res:
                    rec["error"] = "fio failed: " + " ".join(res.get("log", [])[-2:])
                else:
                    rec["error"] = error or "no result"
                if error:
                    rec["boot_error"] = error
                data["wallclock"].append(rec)
        log(f"round {rnd}/{opts.rounds}: {ok}/{runs} runs "
            f"in {time.time() - t0:.0f} s{'; ' + error if error else ''}")
        save()


def measure_insn(opts, cells, data, save):
    """Instructions per I/O: two plugin boots per (cell, driver)."""
    n1, n2 = opts.insn_ios
    for c in cells:
        for rnd in range(1, opts.insn_rounds + 1):
            for driver in opts.drivers:
                counts = {}
                for n in (n1, n2):
                    counts[n] = insn_boot(driver, c, n, data["meta"]["host_bio_property"])
                rec = {"round": rnd, "driver": driver, "cell": c.id, "n1": n1, "n2": n2,
                       "boots": {str(n): v for n, v in counts.items()}}
                a, b = counts[n1], counts[n2]
                if "error" in a or "error" in b:
                    rec["error"] = a.get("error") or b.get("error")
                else:
                    rec["insn_per_io"] = (b["insns"] - a["insns"]) / (b["ios"] - a["ios"])
                data["insn"].append(rec)
                log(f"insn {c.id} {driver}: "
                    + (f"{rec['insn_per_io']:.0f} instructions/I/O" if "insn_per_io" in rec
                       else rec["error"]))
                save()


def insn_boot(driver, cell, ios, host_bio):
    """One boot under libinsn doing @ios I/Os of @cell: guest instruction
    total and the I/O count fio reported."""
    fd, plugin_log = tempfile.mkstemp(prefix="vblk-bench-insn-", suffix=".log")
    os.close(fd)
    try:
        qemu_args = ["-plugin", f"{LIBINSN},inline=on", "-d", "plugin", "-D", plugin_log]
        text = f"{cell.id} {cell.cls} {cell.fio_args(ios=ios)}\n"
        results, _, error = boot(driver, [cell.cls], text, 300 + ios // 100, host_bio,
                                 qemu_args)
        with open(plugin_log) as f:
            m = re.search(r"^total insns: (\d+)$", f.read(), re.M)
    finally:
        os.unlink(plugin_log)
    res = results.get(cell.id)
    if error or not res or res["status"] != 0:
        return {"error": error or "cell failed"}
    if not m:
        return {"error": "no instruction count from the plugin"}
    fig = fio_figures(cell, res)
    return {"insns": int(m.group(1)), "ios": fig["ios"], "iops": fig["iops"]}


def qmp_ready_ms(fw, blockdev, bio):
    """QEMU start (-S) to a QMP answer, in ms, with virtio-blk bio=@bio;
    plus the device's bio-probe property when it has one."""
    tmp = tempfile.mkdtemp(prefix="vblk-bench-p5-")
    sock = os.path.join(tmp, "qmp.sock")
    args = [QEMU, "-S", "-accel", "tcg", "-machine", "pc", "-nodefaults",
            "-no-user-config", "-display", "none", "-L", fw, "-blockdev", blockdev,
            "-device", f"virtio-blk-pci,id=p5,drive=n-p5,bio={bio}",
            "-qmp", f"unix:{sock},server=on,wait=off"]
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        qmp = QMP(sock)
        qmp.cmd("query-status")
        ms = (time.monotonic() - t0) * 1000
        try:
            probe = qmp.cmd("qom-get", path="/machine/peripheral/p5", property="bio-probe")
        except RuntimeError:
            probe = None
        try:
            qmp.cmd("quit")
        except RuntimeError:
            pass
        qmp.close()
        proc.wait(timeout=30)
        return ms, probe
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def measure_probe(opts, data):
    """P5: realize-time cost of the host probe (bio=auto vs bio=off)."""
    if not data["meta"]["host_bio_property"]:
        data["probe"] = {"measurable": False,
                         "note": "not measurable: host series not applied"}
        return
    fw = subprocess.run(["bash", os.path.join(TOOLS, "get-firmware.sh")], check=True,
                        stdout=subprocess.PIPE, text=True).stdout.strip()
    disk = Disk("p5:ram")
    tmp = tempfile.mkdtemp(prefix="vblk-bench-p5-")
    times = {"auto": [], "off": []}
    probes = []
    try:
        blockdev = disk.setup(tmp, os.path.basename(tmp))
        for _ in range(opts.probe_reps):
            for bio in ("off", "auto"):
                ms, probe = qmp_ready_ms(fw, blockdev, bio)
                times[bio].append(ms)
                if bio == "auto" and probe is not None:
                    probes.append(probe)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        data["probe"] = {"measurable": False, "note": f"measurement failed: {exc}"}
        return
    finally:
        disk.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    # Each auto start follows an off start: take the median of the pairs.
    delta = statistics.median(a - o for a, o in zip(times["auto"], times["off"]))
    data["probe"] = {"measurable": True, "ms": times, "added_ms": delta,
                     "reported": probes}
    log(f"probe: QMP-ready {delta:+.1f} ms with bio=auto (median of "
        f"{opts.probe_reps} pairs)")


# -- analysis --------------------------------------------------------------

def spread_pct(values):
    """(max - min) / median, in percent."""
    med = statistics.median(values)
    return (max(values) - min(values)) / med * 100 if med else 0.0


def summarize(data, cells, drivers):
    """Per cell and driver: medians, spreads, the path used, instructions/I/O."""
    summary = {}
    for c in cells:
        row = summary.setdefault(c.id, {"label": c.label, "class": c.cls})
        for d in drivers:
            recs = [r for r in data["wallclock"]
                    if r["cell"] == c.id and r["driver"] == d and "iops" in r]
            ins = [r["insn_per_io"] for r in data["insn"]
                   if r["cell"] == c.id and r["driver"] == d and "insn_per_io" in r]
            s = {"rounds": len(recs)}
            if recs:
                iops = [r["iops"] for r in recs]
                s.update(iops=statistics.median(iops), iops_min=min(iops),
                         iops_by_round={r["round"]: r["iops"] for r in recs},
                         iops_max=max(iops), iops_spread_pct=spread_pct(iops),
                         lat_mean_us=statistics.median(r["lat_mean_us"] for r in recs),
                         clat_p99_us=statistics.median(r["clat_p99_us"] for r in recs),
                         paths=sorted({r["path"] for r in recs}),
                         host_offered=sorted({"yes" if r["host_probe"].get("offered")
                                              else "no" for r in recs
                                              if r.get("host_probe")}),
                         reasons=sorted({r["reason"] for r in recs}))
                busy = [r["busy_us_per_io"] for r in recs if "busy_us_per_io" in r]
                if busy:
                    s.update(busy_us_per_io=statistics.median(busy))
            if ins:
                s.update(insn_per_io=statistics.median(ins),
                         insn_spread_pct=spread_pct(ins) if len(ins) > 1 else None)
            row[d] = s
    return summary


def ratio(summary, cell, a, b, key="iops"):
    """@a against @b in @cell, or None when either was not measured.
    IOPS: the median over rounds of the ratio within a round (the runs of
    one round are seconds apart, rounds are minutes apart and the host's
    speed drifts between them); other figures: the ratio of the medians."""
    sa = summary[cell].get(a, {})
    sb = summary[cell].get(b, {})
    if key == "iops" and "iops_by_round" in sa and "iops_by_round" in sb:
        pairs = [sa["iops_by_round"][r] / sb["iops_by_round"][r]
                 for r in sa["iops_by_round"] if sb["iops_by_round"].get(r)]
        if pairs:
            return statistics.median(pairs)
    x = sa.get(key)
    y = sb.get(key)
    return x / y if x is not None and y else None


def pair_range(summary, cell, a, b):
    """' (rounds MIN-MAX)': how far the per-round IOPS ratios of @a to @b
    spread, or '' when fewer than two rounds pair up."""
    sa = summary[cell].get(a, {}).get("iops_by_round", {})
    sb = summary[cell].get(b, {}).get("iops_by_round", {})
    pairs = [sa[r] / sb[r] for r in sa if sb.get(r)]
    if len(pairs) < 2:
        return ""
    return f" (rounds {min(pairs):.2f}x-{max(pairs):.2f}x)"


def verdict(checks):
    """Combine checks (True, False, or None when not measured): miss if
    any failed, n/a if none was measured, incomplete if some were not."""
    if False in checks:
        return "miss"
    if all(ok is None for ok in checks):
        return "n/a"
    return "incomplete" if None in checks else "pass"


def targets(summary, cells, probe):
    """The issue's targets P1-P5, each pass / miss / n/a with details."""
    out = []

    def add(name, text, checks, details):
        out.append({"id": name, "target": text, "status": verdict(checks),
                    "details": details})

    # P1: ram 4k random read, QD1 and QD16.
    checks, details = [], []
    for c in cells:
        if c.cls == "ram" and c.workload == "rnd-read":
            r_iops = ratio(summary, c.id, "bio", "stock")
            r_ins = ratio(summary, c.id, "bio", "stock", "insn_per_io")
            checks += [None if r_iops is None else r_iops >= 1.30,
                       None if r_ins is None else r_ins <= 0.75]
            details.append(f"{c.label}: bio/stock IOPS {fmt_x(r_iops)}"
                           f"{pair_range(summary, c.id, 'bio', 'stock')}, "
                           f"instructions/I/O {fmt_x(r_ins)}")
    add("P1", "ram 4k randread QD1 and QD16: bio >= 1.30x stock IOPS and "
        "<= 0.75x stock instructions/I/O", checks, details)

    # P2: slow sequential, where merging pays (QD16).
    checks, details = [], []
    for c in cells:
        if c.cls == "slow" and c.workload.startswith("seq") and c.depth > 1:
            r_bio = ratio(summary, c.id, "request", "bio")
            r_auto = ratio(summary, c.id, "auto", "request")
            checks += [None if r_bio is None else r_bio > 1.0,
                       None if r_auto is None else r_auto >= 0.97]
            details.append(f"{c.label}: request/bio {fmt_x(r_bio)}, "
                           f"auto/request {fmt_x(r_auto)}")
    add("P2", "slow sequential (QD16): request beats bio, auto within 3% of request",
        checks, details)

    # P3: every cell, auto against the better fixed path (the one auto
    # falls furthest behind).  A miss says whether auto chose the other
    # path, or ran the better path itself (then the gap is between runs
    # of the same code: the spreads say how far apart those are here).
    checks, details = [], []
    for c in cells:
        row = summary[c.id]
        auto = row.get("auto", {})
        vs = {p: ratio(summary, c.id, "auto", p) for p in ("request", "bio")}
        vs = {p: r for p, r in vs.items() if r is not None}
        best = min(vs, key=vs.get) if len(vs) == 2 else None
        ok = None if best is None else vs[best] >= 0.97
        checks.append(ok)
        if ok is False:
            text = f"{c.label}: auto {vs[best]:.2f}x {best}"
            if auto.get("paths") == [best]:
                text += (f" (auto ran the {best} path too; "
                         f"{pair_range(summary, c.id, 'auto', best)[2:-1]})")
            else:
                text += f" (auto ran the {'/'.join(auto.get('paths', []))} path)"
            details.append(text)
    add("P3", "every cell: auto >= 0.97x the better fixed path (IOPS)", checks, details)

    # P4: every cell, request path against stock.
    checks, details = [], []
    for c in cells:
        r_iops = ratio(summary, c.id, "request", "stock")
        checks.append(None if r_iops is None else r_iops >= 1.0)
        if r_iops is not None and r_iops < 1.0:
            details.append(f"{c.label}: request/stock IOPS {r_iops:.3f}x"
                           f"{pair_range(summary, c.id, 'request', 'stock')}")
        if c.cls == "ram":
            r_ins = ratio(summary, c.id, "request", "stock", "insn_per_io")
            if r_ins is not None:
                checks.append(r_ins <= 0.93)
                if r_ins > 0.93:
                    details.append(f"{c.label}: request/stock instructions/I/O "
                                   f"{r_ins:.2f}x")
    add("P4", "every cell: request >= 1.00x stock IOPS; on ram <= 0.93x stock "
        "instructions/I/O", checks, details)

    # P5: host probe cost.
    if probe.get("measurable"):
        fastest = min(probe["ms"]["auto"]) - min(probe["ms"]["off"])
        details = [f"{probe['added_ms']:+.1f} ms to QMP-ready (bio=auto vs bio=off, "
                   f"median of {len(probe['ms']['auto'])} pairs; fastest starts "
                   f"{fastest:+.1f} ms)"]
        rep = probe["reported"][-1] if probe["reported"] else {}
        if "latency-ns" in rep:
            details.append(f"the device reports {rep['reads']} probe reads, median "
                           f"{rep['latency-ns'] / 1000:.0f} µs, offered: {rep['offered']}")
        add("P5", "the host probe adds <= 20 ms to device realize",
            [probe["added_ms"] <= 20], details)
    else:
        out.append({"id": "P5", "target": "the host probe adds <= 20 ms to device realize",
                    "status": "n/a", "details": [probe.get("note", "not measured")]})
    return out


def fmt_x(r):
    return "-" if r is None else f"{r:.2f}x"


def fmt_pct(r):
    return "" if r is None else f" ({(r - 1) * 100:+.1f}%)"


# -- reports ---------------------------------------------------------------

def iops_table(summary, cells, drivers):
    """Rows of the classic table: IOPS per driver, improvement over stock."""
    rows = []
    for c in cells:
        row = [c.label]
        for d in drivers:
            iops = summary[c.id].get(d, {}).get("iops")
            cell = "-" if iops is None else f"{iops:,.0f}"
            if d != "stock" and "stock" in drivers:
                cell += fmt_pct(ratio(summary, c.id, d, "stock"))
            row.append(cell)
        rows.append(row)
    return ["workload"] + [f"{d} IOPS" for d in drivers], rows


def detail_table(summary, cells, drivers):
    """Rows: spread, latency, guest CPU time (when measured), path used,
    instructions/I/O per driver."""
    busy = any("busy_us_per_io" in summary[c.id].get(d, {}) for c in cells for d in drivers)
    rows = []
    for c in cells:
        for d in drivers:
            s = summary[c.id].get(d, {})
            if not s.get("rounds") and "insn_per_io" not in s:
                continue
            ins = s.get("insn_per_io")
            row = [c.label, d, str(s.get("rounds", 0)),
                   f"{s['iops_spread_pct']:.1f}%" if "iops" in s else "-",
                   f"{s['lat_mean_us']:.0f}" if "iops" in s else "-",
                   f"{s['clat_p99_us']:.0f}" if "iops" in s else "-"]
            if busy:
                row.append(f"{s['busy_us_per_io']:.0f} of {1e6 / s['iops']:.0f}"
                           if "busy_us_per_io" in s else "-")
            row += ["/".join(s.get("host_offered", [])) or "-",
                    "/".join(s.get("paths", [])) or "-",
                    "-" if ins is None else f"{ins:,.0f}"
                    + fmt_pct(ratio(summary, c.id, d, "stock", "insn_per_io")
                              if d != "stock" else None)]
            rows.append(row)
    return (["workload", "driver", "rounds", "IOPS spread", "mean lat (µs)", "p99 clat (µs)"]
            + (["guest CPU busy of wall (µs/I/O)"] if busy else [])
            + ["host offered bio", "path used", "instructions/I/O"], rows)


def targets_table(tgts):
    return (["target", "requirement", "status", "details"],
            [[t["id"], t["target"], t["status"], "; ".join(t["details"]) or "-"]
             for t in tgts])


def markdown(header, rows, numeric=True):
    """A markdown table; @numeric right-aligns every column but the first."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(" ---: " if i and numeric else " --- "
                            for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def rst_table(header, rows):
    """A list-table (cells may hold anything)."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for r in [header] + rows:
        lines.append(f"   * - {r[0]}")
        lines += [f"     - {v}" for v in r[1:]]
    return "\n".join(lines)


def chart(summary, cells, drivers, path, smoke):
    """Bars: IOPS and instructions/I/O of each variant relative to stock
    (@smoke marks the figures as not final)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [d for d in drivers if d != "stock"]
    ins_cells = [c for c in cells if any("insn_per_io" in summary[c.id].get(d, {})
                                         for d in drivers)]
    nplots = 2 if ins_cells and "stock" in drivers else 1
    fig, axes = plt.subplots(nplots, 1, figsize=(max(8, len(cells) * 0.55), 4.5 * nplots),
                             squeeze=False)
    width = 0.8 / max(1, len(others))
    panels = [(axes[0][0], cells, "iops", "IOPS relative to stock (median)")]
    if nplots == 2:
        panels.append((axes[1][0], ins_cells, "insn_per_io",
                       "instructions per I/O relative to stock"))
    for ax, pcells, key, title in panels:
        for i, d in enumerate(others if "stock" in drivers else drivers):
            vals = [(ratio(summary, c.id, d, "stock", key) if "stock" in drivers
                     else summary[c.id].get(d, {}).get(key)) or 0 for c in pcells]
            ax.bar([x + (i - (len(others) - 1) / 2) * width for x in range(len(pcells))],
                   vals, width, label=d)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(pcells)))
        ax.set_xticklabels([f"{c.cls}\n{c.workload}\nQD{c.depth}" for c in pcells],
                           fontsize=7)
        ax.set_xlim(-0.6, max(len(pcells), 2) - 0.4)
        ax.set_title(title + ("  [not final results]" if smoke else ""))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reproduce_cmd(argv):
    """The command that repeats this run's measurements (without the
    options that only say where the reports go or skip the builds)."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith(("--out=", "--no-prepare", "--doc", "--no-doc")):
            args.append(arg)
    return "python3 tools/bench/bench.py " + shlex.join(args) if args else "make bench"


def write_reports(data, cells, drivers, out, doc):
    """results.json, results.md, results.png, results.rst (and the page)."""
    summary = summarize(data, cells, drivers)
    data["summary"] = summary
    tgts = targets(summary, cells, data.get("probe", {}))
    data["targets"] = tgts
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(data, f, indent=1)

    meta = data["meta"]
    smoke = meta["smoke"]
    # The end load average counts the bench's own last guests: only the
    # start's says something about others; during the run, CPU accounting.
    busy = meta["loadavg_start"][0] > 1.0 or meta.get("other_load", 0.0) > OTHER_LOAD_MAX
    if smoke:
        banner = ("SMOKE RUN (--quick): these figures only show that the benchmark "
                  "works; they are not results.")
    elif busy:
        banner = ("The machine was busy during this run (see the load average): the "
                  "figures are noisy and are not final results.")
    else:
        banner = ""
    host_note = ("the host's bio property was set to auto on every disk"
                 if meta["host_bio_property"] else
                 "this QEMU has no bio property (host series not applied): auto "
                 "could not use the host hint and fell back to its default path")
    facts = [f"date {meta['date']}, commit {meta['git_commit'][:12]}"
             f"{' (dirty tree)' if meta['git_dirty'] else ''}",
             f"{meta['qemu']}, TCG, guest kernel {meta['guest_kernel']}",
             f"{meta['cpus']} host CPUs, load average {meta['loadavg_start'][0]:.1f} at start"
             + (f"; other processes kept {meta['other_load']:.2f} CPUs busy on average "
                "during the run" if "other_load" in meta else ""),
             f"{meta['rounds']} rounds of {meta['runtime']} s per cell; instructions from "
             f"{meta['insn_ios'][0]} vs {meta['insn_ios'][1]} I/Os",
             host_note]
    t_iops = iops_table(summary, cells, drivers)
    t_detail = detail_table(summary, cells, drivers)
    t_targets = targets_table(tgts)

    md = ["# virtio_blk adaptive: benchmark results", ""]
    if banner:
        md += [f"**{banner}**", ""]
    md += [f"- {x}" for x in facts]
    md += ["", f"Reproduce: `{meta['command']}`", "", "## IOPS (improvement over stock)", "",
           markdown(*t_iops), "", "## Targets", "", markdown(*t_targets, numeric=False), "",
           "## Details (medians over rounds)", "", markdown(*t_detail), "",
           "![chart](results.png)", ""]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))
    chart(summary, cells, drivers, os.path.join(out, "results.png"), bool(banner))

    rst = rst_page(meta, banner, facts, t_iops, t_targets, t_detail,
                   "virtio_blk-adaptive-results.png")
    with open(os.path.join(out, "results.rst"), "w") as f:
        f.write(rst)
    if doc:
        with open(DOC, "w") as f:
            f.write(rst)
        shutil.copy(os.path.join(out, "results.png"),
                    os.path.join(os.path.dirname(DOC), "virtio_blk-adaptive-results.png"))
        log(f"wrote {os.path.relpath(DOC, ROOT)} and its chart")
    return tgts


def rst_page(meta, banner, facts, t_iops, t_targets, t_detail, image):
    """The results page, reStructuredText."""
    title = "virtio_blk adaptive I/O path: benchmark results"
    lines = [".. SPDX-License-Identifier: GPL-2.0", "", "=" * len(title), title,
             "=" * len(title), ""]
    if banner:
        lines += [".. warning::", "", f"   {banner}", ""]
    lines += ["Generated by ``tools/bench/bench.py`` (``make bench``). Each figure is a",
              "ratio measured inside one run: wall-clock IOPS from runs of the stock",
              "in-tree driver and our request, bio and auto variants taking turns in one",
              "guest per round, the disks rebound to the next variant between runs",
              "(IOPS are medians over rounds; a ratio is the median of the ratios within",
              "each round), and guest instructions per I/O from QEMU's ``libinsn`` TCG",
              "plugin, as the difference of two boots doing different numbers of I/Os.",
              "", "Run", "===", ""]
    lines += [f"- {x}" for x in facts]
    lines += ["", "To reproduce::", "", f"    {meta['command']}", "",
              "IOPS", "====", "", "4k blocks, libaio, direct I/O; in brackets the "
              "change against stock (median of the per-round ratios).", "", rst_table(*t_iops), "",
              f".. image:: {image}", "   :alt: IOPS and instructions per I/O relative "
              "to stock", "", "Targets", "=======", "", rst_table(*t_targets), "",
              "Why targets are missed: where the instructions go, per kernel symbol",
              "(``tools/bench/profile.py``), and on slow storage how long the device",
              "waits for the guest between requests (``tools/bench/ringtrace.py``):",
              "``tools/bench/profile-notes.rst``.", "",
              "Details", "=======", "", rst_table(*t_detail), ""]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------

def cell_options(ap, cls, out):
    """The options of the per-cell tools (profile.py, ringtrace.py): one
    class and workload, queue depths, driver variants, output folder."""
    ap.add_argument("--class", dest="cls", default=cls, choices=list(CLASSES))
    ap.add_argument("--workload", default="rnd-read", choices=list(WORKLOADS))
    ap.add_argument("--depths", default="1,16", help="queue depths (default 1,16)")
    ap.add_argument("--drivers", default="stock,request,bio",
                    help="variants (default stock,request,bio)")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", out))
    ap.add_argument("--no-prepare", action="store_true")


def cell_choices(ap, opts):
    """(cells, drivers) chosen with cell_options(); ap.error() on bad ones."""
    drivers = [d for d in opts.drivers.split(",") if d]
    bad = [d for d in drivers if d not in DRIVERS]
    if bad or not drivers:
        ap.error(f"unknown driver: {', '.join(bad)}" if bad else "no driver given")
    try:
        depths = [int(x) for x in opts.depths.split(",") if x]
    except ValueError:
        depths = []
    if not depths or min(depths) < 1:
        ap.error(f"--depths wants queue depths >= 1, not '{opts.depths}'")
    return [Cell(opts.cls, opts.workload, d) for d in depths], drivers


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, help="rounds (default 8; quick 1)")
    ap.add_argument("--runtime", type=int,
                    help="seconds per timed fio run (default 4; quick 1)")
    ap.add_argument("--classes", default=",".join(CLASSES),
                    help=f"device classes (default {','.join(CLASSES)})")
    ap.add_argument("--workloads",
                    help=f"workloads (default {','.join(WORKLOADS)}; quick "
                         f"{','.join(QUICK['workloads'])})")
    ap.add_argument("--depths", default=",".join(map(str, DEPTHS)),
                    help="queue depths (default 1,16)")
    ap.add_argument("--drivers", default=",".join(DRIVERS),
                    help=f"variants, in the order they run (default {','.join(DRIVERS)})")
    ap.add_argument("--insn-ios", help="N1,N2: I/Os of the two instruction-count boots "
                    "(default 20000,220000; quick 1000,41000)")
    ap.add_argument("--insn-classes", default="ram",
                    help="classes whose instructions/I/O are counted (default ram; "
                         "'none' to skip)")
    ap.add_argument("--insn-workloads",
                    help="workloads counted (default rnd-read)")
    ap.add_argument("--insn-depths",
                    help="queue depths counted (default 1,16; quick 16)")
    ap.add_argument("--insn-rounds", type=int, default=1,
                    help="instruction-count pairs per cell and driver (default 1)")
    ap.add_argument("--probe-reps", type=int,
                    help="QEMU starts per bio mode for P5 (default 10; quick 3)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny settings: a smoke test in a few minutes, not results")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "bench"),
                    help="output directory (default out/bench)")
    ap.add_argument("--doc", action=argparse.BooleanOptionalAction,
                    help="write Documentation/block/virtio_blk-adaptive-results.rst "
                         "(default: yes for a full run, no with --quick or for "
                         "the reports of a quick run)")
    ap.add_argument("--no-prepare", action="store_true",
                    help="skip the build steps (everything already built)")
    ap.add_argument("--from-json", metavar="FILE",
                    help="measure nothing: write the reports again from a "
                         "results.json (or results.partial.json)")
    opts = ap.parse_args(argv)

    preset = QUICK if opts.quick else FULL
    for key in ("rounds", "runtime", "probe_reps"):
        if getattr(opts, key) is None:
            setattr(opts, key, preset[key])
    opts.insn_ios = (tuple(int(x) for x in opts.insn_ios.split(","))
                     if opts.insn_ios else preset["insn_ios"])

    def pick(text, allowed, what):
        items = [x for x in text.split(",") if x]
        bad = [x for x in items if x not in allowed]
        if bad:
            ap.error(f"unknown {what}: {', '.join(bad)} (known: {', '.join(allowed)})")
        return items
    opts.classes = pick(opts.classes, list(CLASSES), "class")
    opts.workloads = (pick(opts.workloads, list(WORKLOADS), "workload")
                      if opts.workloads else preset["workloads"])
    opts.drivers = pick(opts.drivers, list(DRIVERS), "driver")
    opts.depths = [int(x) for x in opts.depths.split(",") if x]
    opts.insn_depths = ([int(x) for x in opts.insn_depths.split(",") if x]
                        if opts.insn_depths else
                        [d for d in preset["insn_depths"] if d in opts.depths])
    opts.insn_classes = ([] if opts.insn_classes == "none" else
                         pick(opts.insn_classes, list(CLASSES), "class"))
    opts.insn_workloads = (pick(opts.insn_workloads, list(WORKLOADS), "workload")
                           if opts.insn_workloads else
                           [w for w in preset["insn_workloads"] if w in opts.workloads])
    if len(opts.insn_ios) != 2 or not 0 < opts.insn_ios[0] < opts.insn_ios[1]:
        ap.error("--insn-ios wants N1,N2 with 0 < N1 < N2")
    if opts.rounds < 1 or opts.runtime < 1:
        ap.error("--rounds and --runtime must be >= 1")
    return opts


def report_again(opts):
    """--from-json: the reports of an earlier (possibly partial) run."""
    with open(opts.from_json) as f:
        data = json.load(f)
    meta = data["meta"]
    cells = [Cell(*c) for c in meta["cells"]]
    doc = opts.doc if opts.doc is not None else not meta["smoke"]
    write_reports(data, cells, meta["drivers"], opts.out, doc)
    log(f"reports written to {opts.out}")
    return 0


def main(argv):
    opts = parse_args(argv)
    os.makedirs(opts.out, exist_ok=True)
    if opts.from_json:
        return report_again(opts)
    cells = [Cell(cls, w, d) for cls in opts.classes for w in opts.workloads
             for d in opts.depths]
    insn_cells = [c for c in cells
                  if c.cls in opts.insn_classes and c.workload in opts.insn_workloads
                  and c.depth in opts.insn_depths]
    if not opts.no_prepare:
        prepare()
    host_bio = host_knows_bio()
    if not host_bio:
        log("this QEMU has no virtio-blk 'bio' property (host series not applied): "
            "auto cannot use the host hint")
    data = {"meta": describe_host(host_bio), "wallclock": [], "insn": []}
    data["meta"].update(
        command=reproduce_cmd(argv), smoke=opts.quick, rounds=opts.rounds,
        runtime=opts.runtime, insn_ios=opts.insn_ios, drivers=opts.drivers,
        cells=[(c.cls, c.workload, c.depth) for c in cells], classes={c: CLASSES[c] for c in opts.classes},
        fio={c.id: c.fio_args(runtime=opts.runtime) for c in cells})
    part = os.path.join(opts.out, "results.partial.json")

    def save():
        with open(part, "w") as f:
            json.dump(data, f, indent=1)

    # Rough costs on a quiet machine: a boot ~20 s (~45 s under the
    # plugin), fio and the rebinding ~0.5 s on top of the runtime, ~3000
    # IOPS under the plugin.
    round_s = 20 + len(cells) * len(opts.drivers) * (opts.runtime + 0.5)
    insn_s = 2 * 45 + sum(opts.insn_ios) / 3000
    eta = (opts.rounds * round_s
           + len(insn_cells) * opts.insn_rounds * len(opts.drivers) * insn_s) / 60
    log(f"{len(cells)} cells x {len(opts.drivers)} drivers x {opts.rounds} rounds, "
        f"instructions for {len(insn_cells)} cells: roughly {eta:.0f} min")
    cpu_start, t_start = cpu_seconds(), time.time()
    measure_probe(opts, data)
    measure_wallclock(opts, cells, data, save)
    measure_insn(opts, insn_cells, data, save)
    data["meta"]["loadavg_end"] = os.getloadavg()
    data["meta"]["other_load"] = other_load(cpu_start, cpu_seconds(), time.time() - t_start)
    doc = opts.doc if opts.doc is not None else not opts.quick
    tgts = write_reports(data, cells, opts.drivers, opts.out, doc)
    os.unlink(part)
    with open(os.path.join(opts.out, "results.md")) as f:
        print(f.read())
    for t in tgts:
        log(f"{t['id']}: {t['status']}")
    log(f"results in {opts.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        sys.exit(1)
