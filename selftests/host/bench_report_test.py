#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Unit test of the benchmark's judgement and reports, without a guest.

tools/bench/bench.py turns measurements into medians, ratios and the
pass/miss verdicts of targets P1-P5, and writes the results page from
them; tools/bench/ringtrace.py reads QEMU trace logs.  A mistake there
would publish a wrong verdict from right measurements, and a full run
takes over an hour, so the logic is checked here on made-up measurements
whose verdicts are known: every target passing and each one missing,
incomplete runs, the explanations a miss carries, the parsing of the
guest's output and of trace logs, the reports written from a results
file, and bad command lines.

Output is KTAP; exit status 0 when everything passed.
"""

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.path.join(HERE, "..", "..", "tools", "bench")
sys.path.insert(0, BENCH_DIR)
import bench  # noqa: E402
import ktap  # noqa: E402
import ringtrace  # noqa: E402

# tools/bench/profile.py, by path: "profile" is also a standard module.
_spec = importlib.util.spec_from_file_location("bench_profile",
                                               os.path.join(BENCH_DIR, "profile.py"))
profile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile)

CELLS = [bench.Cell(cls, w, d) for cls in ("ram", "slow")
         for w in ("rnd-read", "seq-write") for d in (1, 16)]
DRIVERS = ["stock", "request", "bio", "auto"]
PLAN = 42

# IOPS per driver that meet every target: bio well ahead on ram, request
# ahead on slow storage (far ahead on sequential), auto on the winner's path.
GOOD_IOPS = {"stock": 100.0, "request": 105.0, "bio": 140.0}
GOOD_INSN = {"stock": 20000.0, "request": 18000.0, "bio": 14000.0, "auto": 14000.0}


def measurements(iops=None, paths=None, insn=None, rounds=3, jitter=0.01):
    """Made-up data in results.json's layout.  @iops and @paths map
    (cell id, driver) to a value, falling back to the good ones."""
    iops, paths, insn = iops or {}, paths or {}, insn or {}
    data = {"wallclock": [], "insn": []}
    for c in CELLS:
        seq_slow = c.cls == "slow" and c.workload.startswith("seq")
        for d in DRIVERS:
            if seq_slow:
                good = {"stock": 100.0, "request": 150.0, "bio": 100.0}
            elif c.cls == "slow":
                good = {"stock": 100.0, "request": 110.0, "bio": 105.0}
            else:
                good = GOOD_IOPS
            path = paths.get((c.id, d), {"stock": "stock", "auto":
                                         "request" if c.cls == "slow" else "bio"}.get(d, d))
            base = iops.get((c.id, d), good.get(path, good["request"]))
            for r in range(rounds):
                data["wallclock"].append({
                    "round": r + 1, "driver": d, "cell": c.id,
                    "iops": base * (1 + jitter * (r - 1)), "ios": 1000,
                    "lat_mean_us": 100.0, "clat_p99_us": 300.0, "path": path,
                    "reason": "-", "bio_bit": "1", "host_probe": {"offered": c.cls == "ram"}})
            if c.cls == "ram" and c.workload == "rnd-read":
                data["insn"].append({"driver": d, "cell": c.id,
                                     "insn_per_io": insn.get((c.id, d), GOOD_INSN[d])})
    return data


def verdicts(data, probe=None):
    probe = probe or {"measurable": True, "added_ms": 1.0,
                      "ms": {"auto": [10.0], "off": [9.0]}, "reported": []}
    summary = bench.summarize(data, CELLS, DRIVERS)
    return {t["id"]: t for t in bench.targets(summary, CELLS, probe)}


def status(t, tid):
    return t[tid]["status"]


def test_targets(k):
    t = verdicts(measurements())
    k.check(all(v["status"] == "pass" for v in t.values()), "all targets pass on good data",
            {i: v["status"] for i, v in t.items()})

    ram1 = "ram-rnd-read-qd1"
    t = verdicts(measurements(iops={(ram1, "bio"): 120.0, (ram1, "auto"): 120.0}))
    k.check(status(t, "P1") == "miss" and "bio/stock IOPS 1.20x" in " ".join(t["P1"]["details"]),
            "P1 misses at 1.20x stock IOPS", t["P1"])

    # A host whose speed drifts between rounds: each round bio is 1.3x
    # stock except round 2, where stock ran fast and bio slow.  Ratios of
    # medians would say 0.80x; the per-round ratios' median says 1.30x.
    data = measurements()
    for r in data["wallclock"]:
        if r["cell"] == ram1 and r["driver"] in ("stock", "bio", "auto"):
            r["iops"] = {"stock": [100.0, 300.0, 310.0],
                         "bio": [130.0, 240.0, 403.0],
                         "auto": [130.0, 240.0, 403.0]}[r["driver"]][r["round"] - 1]
    t = verdicts(data)
    k.check(status(t, "P1") == "pass", "IOPS ratios pair the runs of one round",
            t["P1"])

    orders = [bench.round_order(DRIVERS, r) for r in range(1, 9)]
    places = {d: sorted(o.index(d) for o in orders) for d in DRIVERS}
    k.check(orders[0] == DRIVERS and orders[4] == DRIVERS
            and all(sorted(o) == sorted(DRIVERS) for o in orders)
            and all(p == [0, 0, 1, 1, 2, 2, 3, 3] for p in places.values()),
            "every variant runs in every place equally often over the rounds", orders)

    t = verdicts(measurements(insn={(ram1, "bio"): 16000.0}))
    k.check(status(t, "P1") == "miss" and "instructions/I/O 0.80x" in " ".join(t["P1"]["details"]),
            "P1 misses at 0.80x stock instructions", t["P1"])

    seq = "slow-seq-write-qd16"
    t = verdicts(measurements(iops={(seq, "bio"): 160.0}))
    k.check(status(t, "P2") == "miss", "P2 misses when bio beats request on slow sequential",
            t["P2"])

    t = verdicts(measurements(iops={(seq, "auto"): 140.0}))
    k.check(status(t, "P2") == "miss" and status(t, "P3") == "miss",
            "P2 and P3 miss when auto is 7% behind request", (t["P2"], t["P3"]))

    t = verdicts(measurements(iops={(seq, "auto"): 147.0}))
    k.check(status(t, "P2") == "pass" and status(t, "P3") == "pass",
            "P2 and P3 pass with auto 2% behind request", (t["P2"], t["P3"]))

    ram16 = "ram-rnd-read-qd16"
    t = verdicts(measurements(iops={(ram16, "auto"): 120.0}))
    text = " ".join(t["P3"]["details"])
    k.check(status(t, "P3") == "miss" and "auto ran the bio path too" in text
            and "rounds 0.86x-0.86x" in text,
            "P3 miss on the same path says so, with the per-round ratios", t["P3"])

    t = verdicts(measurements(paths={(ram16, "auto"): "request"}))
    text = " ".join(t["P3"]["details"])
    k.check(status(t, "P3") == "miss" and "auto ran the request path" in text,
            "P3 miss on the other path names the path auto took", t["P3"])

    t = verdicts(measurements(iops={("slow-rnd-read-qd1", "request"): 95.0}))
    text = " ".join(t["P4"]["details"])
    k.check(status(t, "P4") == "miss"
            and "request/stock IOPS 0.950x (rounds 0.95x-0.95x)" in text
            and "instructions" not in text,
            "P4 misses at 0.95x stock IOPS, with the per-round ratios, and "
            "lists no instruction ratio that passes", t["P4"])

    t = verdicts(measurements(insn={(ram16, "request"): 19000.0}))
    k.check(status(t, "P4") == "miss", "P4 misses at 0.95x stock instructions on ram", t["P4"])

    t = verdicts(measurements(), probe={"measurable": True, "added_ms": 25.0,
                                        "ms": {"auto": [35.0], "off": [10.0]}, "reported": []})
    k.check(status(t, "P5") == "miss", "P5 misses at +25 ms", t["P5"])

    t = verdicts(measurements(), probe={"measurable": False, "note": "no bio property"})
    k.check(status(t, "P5") == "n/a", "P5 is n/a without the host series", t["P5"])

    data = measurements()
    data["insn"] = [r for r in data["insn"] if r["driver"] != "bio"]
    t = verdicts(data)
    k.check(status(t, "P1") == "incomplete", "P1 is incomplete without the bio instructions",
            t["P1"])

    k.check(bench.verdict([None, None]) == "n/a" and bench.verdict([True, None]) ==
            "incomplete" and bench.verdict([True, False, None]) == "miss" and
            bench.verdict([True, True]) == "pass", "verdict() combines checks")


def test_guest_results(k):
    fio = {"jobs": [{"read": {"iops": 10.0}}]}
    lines = ["noise",
             "BENCH-BEGIN ram-rnd-read-qd1 path=request reason=module parameter bio_bit=1",
             *json.dumps(fio, indent=1).splitlines(),
             "BENCH-END ram-rnd-read-qd1 status=0",
             "BENCH-BEGIN ram-rnd-read-qd16 path=bio reason=- bio_bit=1",
             "fio: something went wrong",
             "BENCH-END ram-rnd-read-qd16 status=1",
             "BENCH-BEGIN slow-rnd-read-qd1 path=bio reason=- bio_bit=0",
             "{not json",
             "BENCH-END slow-rnd-read-qd1 status=0",
             "BENCH-BEGIN slow-rnd-read-qd16 path=bio reason=- bio_bit=0"]
    r = bench.guest_results(lines)
    k.check(r["ram-rnd-read-qd1"]["status"] == 0 and r["ram-rnd-read-qd1"]["fio"] == fio
            and r["ram-rnd-read-qd1"]["reason"] == "module parameter",
            "guest output: a good cell, a reason with spaces", r.get("ram-rnd-read-qd1"))
    k.check(r["ram-rnd-read-qd16"]["status"] == 1 and
            r["ram-rnd-read-qd16"]["log"] == ["fio: something went wrong"],
            "guest output: a failed cell keeps its log", r.get("ram-rnd-read-qd16"))
    k.check(r["slow-rnd-read-qd1"]["status"] == -1, "guest output: bad JSON fails the cell",
            r.get("slow-rnd-read-qd1"))
    k.check("slow-rnd-read-qd16" not in r, "guest output: a cell without its end is dropped",
            sorted(r))
    job = {"iops": 10.0, "total_ios": 400, "lat_ns": {"mean": 1000.0}}
    res = bench.guest_results([
        "BENCH-BEGIN a path=bio reason=- bio_bit=1 cpu_busy=2 cpu_idle=5",
        json.dumps({"jobs": [{"read": job}]}), "BENCH-END a status=0",
        "BENCH-BEGIN b path=bio reason=- bio_bit=1",
        json.dumps({"jobs": [{"read": job}]}), "BENCH-END b status=0"])
    cell = bench.Cell("ram", "rnd-read", 1)
    a, b = bench.fio_figures(cell, res["a"]), bench.fio_figures(cell, res["b"])
    k.check(a.get("busy_us_per_io") == 50.0 and "busy_us_per_io" not in b,
            "guest output: CPU ticks around a run give its busy µs per I/O", (a, b))


def test_reports(k, tmp):
    data = measurements(iops={("ram-rnd-read-qd16", "auto"): 120.0})
    data["meta"] = {"date": "2026-01-01T00:00:00+00:00", "git_commit": "0" * 40,
                    "git_dirty": False, "qemu": "QEMU emulator version 10.0.2",
                    "guest_kernel": "vmlinuz-test", "host_bio_property": True, "cpus": 2,
                    "loadavg_start": [0.1, 0.1, 0.1], "loadavg_end": [3.0, 2.0, 1.0],
                    "other_load": 0.05,
                    "command": "python3 tools/bench/bench.py", "smoke": False,
                    "rounds": 3, "runtime": 10, "insn_ios": [1, 2], "drivers": DRIVERS,
                    "cells": [(c.cls, c.workload, c.depth) for c in CELLS],
                    "classes": {}, "fio": {}}
    data["probe"] = {"measurable": True, "added_ms": 1.0,
                     "ms": {"auto": [10.0], "off": [9.0]}, "reported": []}
    src = os.path.join(tmp, "in.json")
    with open(src, "w") as f:
        json.dump(data, f)
    doc = bench.DOC
    before = os.path.getmtime(doc) if os.path.exists(doc) else None
    out = os.path.join(tmp, "out")
    os.makedirs(out)
    with contextlib.redirect_stdout(io.StringIO()):
        rc = bench.main(["--from-json", src, "--out", out, "--no-doc"])
    files = sorted(os.listdir(out))
    k.check(rc == 0 and {"results.json", "results.md", "results.rst", "results.png"} <=
            set(files), "--from-json writes json, md, rst and png", files)
    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    k.check("| P3 |" in md and "miss" in md and "auto ran the bio path too" in md and
            "| P1 |" in md, "the markdown report carries the verdicts and explanations")
    for r in data["wallclock"]:
        r["busy_us_per_io"] = 4000.0 / r["iops"]
    with open(src, "w") as f:
        json.dump(data, f)
    with contextlib.redirect_stdout(io.StringIO()):
        bench.main(["--from-json", src, "--out", os.path.join(tmp, "busy"), "--no-doc"])
    with open(os.path.join(tmp, "busy", "results.md")) as f:
        busy_md = f.read()
    k.check("guest CPU busy" not in md and "guest CPU busy" in busy_md
            and "| 40 of 10000 |" in busy_md,
            "the guest's busy time is a column only when the run measured it",
            busy_md[-3000:])
    with open(os.path.join(out, "results.rst")) as f:
        rst = f.read()
    k.check("warning::" not in rst and "ringtrace.py" in rst and
            "tools/bench/profile-notes.rst" in rst,
            "a quiet run's page has no busy banner and points to the profiling notes")
    after = os.path.getmtime(doc) if os.path.exists(doc) else None
    k.check(before == after, "--no-doc leaves the Documentation page alone")

    data["meta"]["other_load"] = 0.5
    with open(src, "w") as f:
        json.dump(data, f)
    with contextlib.redirect_stdout(io.StringIO()):
        bench.main(["--from-json", src, "--out", out, "--no-doc"])
    with open(os.path.join(out, "results.rst")) as f:
        rst = f.read()
    k.check("was busy" in rst and "0.50 CPUs busy" in rst,
            "others keeping half a CPU busy put the busy banner on the page")


def test_cpu_accounting(k):
    k.check(abs(bench.other_load((10.0, 2.0), (20.0, 5.0), 5.0) - 1.4) < 1e-9 and
            bench.other_load((10.0, 2.0), (11.0, 4.0), 5.0) == 0.0,
            "other_load(): host busy time less the bench's own, per second")
    start = bench.cpu_seconds()
    subprocess.run([sys.executable, "-c",
                    "import time\nt = time.process_time()\n"
                    "while time.process_time() - t < 0.5: pass"], check=True)
    end = bench.cpu_seconds()
    k.check(end[1] - start[1] >= 0.45 and end[0] - start[0] >= 0.45,
            "cpu_seconds(): a reaped child's CPU time counts as the bench's own",
            (start, end))


def usage_error(fn, args):
    """Run a command-line entry point that must refuse @args: True when
    it exits with argparse's status 2 and an error line, else why not."""
    err = io.StringIO()
    code = None
    with contextlib.redirect_stderr(err):
        try:
            fn(args)
        except SystemExit as exc:
            code = exc.code
    return (code == 2 and "error:" in err.getvalue()), err.getvalue() or f"exit {code}"


def test_bad_args(k):
    cases = [(bench.parse_args, "bench", ["--classes", "tape"], "an unknown class"),
             (bench.parse_args, "bench", ["--drivers", "stock,fastest"], "an unknown driver"),
             (bench.parse_args, "bench", ["--rounds", "0"], "zero rounds"),
             (ringtrace.main, "ringtrace", ["--drivers", "stock,fastest"], "an unknown driver"),
             (ringtrace.main, "ringtrace", ["--drivers", ","], "no driver"),
             (ringtrace.main, "ringtrace", ["--depths", "16,x"], "a depth that is no number"),
             (ringtrace.main, "ringtrace", ["--depths", "0"], "depth 0"),
             (ringtrace.main, "ringtrace", ["--runtime", "1"], "a 1 s run"),
             (profile.main, "profile", ["--ios", "5000,100"], "--ios N1 > N2"),
             (profile.main, "profile", ["--ios", "many"], "--ios that is no number")]
    for fn, name, args, what in cases:
        ok, why = usage_error(fn, args)
        k.check(ok, f"{name}.py refuses {what}", why)


def trace_lines(gap_us, service_us=2000, batches=50, ring=4):
    """A log of @batches rounds: @ring requests arrive, complete together
    after @service_us, the next round arrives @gap_us later."""
    t, lines = 100.0, []
    for _ in range(batches):
        lines.append(f"1@{t:.6f}:virtio_queue_notify vdev 0x1 n 0 vq 0x2")
        for i in range(ring):
            lines.append(f"1@{t:.6f}:virtio_blk_handle_read vdev 0x1 req 0x{i + 16:x} "
                         f"sector {i} nsectors 8")
        t += service_us / 1e6
        for i in range(ring):
            lines.append(f"1@{t:.6f}:virtio_blk_rw_complete vdev 0x1 req 0x{i + 16:x} ret 0")
        lines.append(f"1@{t:.6f}:virtio_notify vdev 0x1 vq 0x2")
        t += gap_us / 1e6
    return lines


def test_ringtrace(k, tmp):
    path = os.path.join(tmp, "trace.log")
    with open(path, "w") as f:
        f.write("qemu-system-x86_64: some other message\n")
        f.write("\n".join(trace_lines(500)) + "\n")
    fig = ringtrace.analyse(ringtrace.parse(path), 1.0)
    k.check(abs(fig["gap_median_us"] - 500) < 1 and abs(fig["service_median_us"] - 2000) < 1,
            "ringtrace: refill gap and service time", fig)
    k.check(abs(fig["inflight_mean"] - 4 * 2000 / 2500) < 0.1 and
            abs(fig["iops"] - 4 / 0.0025) < 0.05 * 4 / 0.0025 and
            abs(fig["notifies_per_request"] - 0.25) < 0.01,
            "ringtrace: requests in flight, IOPS, notifications per request", fig)
    try:
        ringtrace.analyse([], 1.0)
        k.check(False, "ringtrace: an empty trace is an error")
    except RuntimeError as exc:
        k.check("no virtio-blk events" in str(exc), "ringtrace: an empty trace is an error",
                exc)


def main():
    return ktap.run(PLAN, [
        lambda k, tmp: test_targets(k),
        lambda k, tmp: test_guest_results(k),
        test_reports,
        lambda k, tmp: test_bad_args(k),
        lambda k, tmp: test_cpu_accounting(k),
        test_ringtrace,
    ], "vblk-bench-test-")


if __name__ == "__main__":
    sys.exit(main())
