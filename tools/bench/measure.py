# SPDX-License-Identifier: GPL-2.0
"""The benchmark's measuring stage: boots guests under the bench's QEMU
(TCG) with tools/vblk, runs fio in them and collects raw figures into a
results dict (results.json): meta, wallclock, insn and probe.  Nothing
here judges or formats them (analyse.py, report.py).

- wall-clock IOPS and latency from alternating runs: one boot per round
  attaches the disks of every device class, loads the stock virtio_blk
  and ours (built as vblk_bench) side by side, and runs every cell once
  per driver variant in turn (the order rotates by one each round),
  rebinding the disks between runs;
- guest instructions per I/O from QEMU's libinsn TCG plugin, as the
  difference of two boots doing N1 and N2 I/Os of the same cell;
- the cost of the host's storage probe: QEMU start to QMP-ready with
  bio=on against bio=off on the same disk (only when the QEMU binary
  knows the property).
"""

import datetime
import importlib.util
import json
import os
import re
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

from cells import CLASSES, DRIVERS, WORKLOADS, Cell  # noqa: E402

ROOT = paths.ROOT
BENCH = os.path.join(TOOLS, "bench")
GUEST_SCRIPT = os.path.join(BENCH, "guest-bench.sh")
QEMU_BUILD = paths.QEMU_BUILD
QEMU = os.path.join(QEMU_BUILD, "qemu-system-x86_64")
LIBINSN = os.path.join(QEMU_BUILD, "tests", "tcg", "plugins", "libinsn.so")
# Our module under another name, to load beside the stock virtio_blk.
BENCH_MODULE = paths.BENCH_MODULE
BENCH_KO = paths.BENCH_KO


def log(msg):
    print(f"bench: {msg}", flush=True)


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
    """What the host reports for disk NAME (its media-info property)."""
    try:
        return qmp.cmd("qom-get", path=f"/machine/peripheral/{name}", property="media-info")
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
            spec += ",bio=on"       # the host reports the medium
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
    plus the device's media-info property when it has one."""
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
            probe = qmp.cmd("qom-get", path="/machine/peripheral/p5", property="media-info")
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
    """P5: realize-time cost of the host probe (bio=on vs bio=off)."""
    if not data["meta"]["host_bio_property"]:
        data["probe"] = {"measurable": False,
                         "note": "not measurable: host series not applied"}
        return
    if not opts.probe_reps:
        data["probe"] = {"measurable": False, "note": "not measured (--probe-reps 0)"}
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
                # "auto" (the results' name) is bio=on: the bit is
                # offered and the medium reported
                ms, probe = qmp_ready_ms(fw, blockdev, "on" if bio == "auto" else "off")
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
    log(f"probe: QMP-ready {delta:+.1f} ms with bio=on (median of "
        f"{opts.probe_reps} pairs)")



def measure(opts, cells, insn_cells, meta, save):
    """Every measurement of a run: the probe cost, the wall-clock rounds,
    the instruction counts.  Returns results.json's dict; @meta (what
    describes the run) goes in as its "meta" and gains the load figures;
    save(data) is called after every boot."""
    host_bio = host_knows_bio()
    if not host_bio:
        log("this QEMU has no virtio-blk 'bio' property (host series not applied): "
            "auto has no media information from the host")
    data = {"meta": describe_host(host_bio), "wallclock": [], "insn": []}
    data["meta"].update(meta)
    cpu_start, t_start = cpu_seconds(), time.time()
    measure_probe(opts, data)
    measure_wallclock(opts, cells, data, lambda: save(data))
    measure_insn(opts, insn_cells, data, lambda: save(data))
    data["meta"]["loadavg_end"] = os.getloadavg()
    data["meta"]["other_load"] = other_load(cpu_start, cpu_seconds(), time.time() - t_start)
    return data


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
