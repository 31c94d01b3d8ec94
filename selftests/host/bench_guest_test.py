#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The benchmark's plumbing in a real guest, at a tiny size.

tools/bench/bench.py measures wall-clock IOPS with the stock virtio_blk
and ours (built a second time as vblk_bench) loaded side by side in one
guest, rebinding the disks to the variant of each run.  This checks that
second build, that every variant's runs really ran on the path the
variant names (the stock driver, our request path, our bio path, and
auto on the path the host's hint asks for), and the error paths: a bad
module name, driver "both" without a renamed module, and a variant the
guest cannot bind.  It measures nothing: a single round of 1-second
runs, no instruction counts.

Output is KTAP; exit status 0 when everything passed.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, os.path.join(TOOLS, "bench"))
sys.path.insert(0, TOOLS)
import bench  # noqa: E402
import ktap  # noqa: E402
from vblk import paths  # noqa: E402
from vblk.disks import Disk  # noqa: E402
from vblk.vm import VM  # noqa: E402

PY = sys.executable or "python3"
PLAN = 9
# What each variant must run on: {variant: {class: (path, reason)}}
EXPECT = {
    "stock": {"ram": ("stock", "-"), "slow": ("stock", "-")},
    "request": {"ram": ("request", "module parameter"),
                "slow": ("request", "module parameter")},
    "bio": {"ram": ("bio", "module parameter"), "slow": ("bio", "module parameter")},
    "auto": {"ram": ("bio", "host hint"), "slow": ("request", "module default")},
}


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def test_build(k):
    p = run(["bash", os.path.join(TOOLS, "build-module.sh"), "--name", bench.BENCH_MODULE])
    ok = p.returncode == 0 and os.path.exists(bench.BENCH_KO)
    if ok:
        info = run(["modinfo", "-F", "name", bench.BENCH_KO])
        ok = info.stdout.strip() == bench.BENCH_MODULE
    k.check(ok, f"build-module.sh --name {bench.BENCH_MODULE} builds "
            f"{bench.BENCH_MODULE}.ko", p.stdout + p.stderr)

    bad = os.path.join(paths.CACHE, "module-Bad-Name")
    p = run(["bash", os.path.join(TOOLS, "build-module.sh"), "--name", "Bad-Name"])
    k.check(p.returncode != 0 and "not a module name" in p.stderr
            and not os.path.exists(bad),
            "build-module.sh --name refuses a bad name and builds nothing",
            p.stdout + p.stderr)


def test_both_needs_rename(k):
    disk = Disk("ram:ram:size=16M")
    vm = VM([disk], driver="both",
            module=os.path.join(paths.ROOT, "guest", "virtio_blk.ko"))
    try:
        vm._overlay(os.devnull)
        err = "no error"
    except RuntimeError as exc:
        err = str(exc)
    finally:
        vm.cleanup()
    k.check("another name" in err,
            "vmrun refuses driver both with our module named virtio_blk", err)


def test_quick_run(k, tmp):
    out = os.path.join(tmp, "out")
    p = run([PY, os.path.join(TOOLS, "bench", "bench.py"), "--quick", "--no-prepare",
             "--no-doc", "--classes", "ram,slow", "--workloads", "rnd-read",
             "--depths", "1", "--runtime", "1", "--insn-classes", "none",
             "--probe-reps", "1", "--out", out], timeout=900)
    k.check(p.returncode == 0, "bench.py runs every variant in one boot",
            p.stdout + p.stderr)
    try:
        with open(os.path.join(out, "results.json")) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        for name in ("every run has a result", "every run has the guest's CPU time per I/O",
                     "every variant ran on its path",
                     "the bio bit is negotiated by ours only, where the host offers it"):
            k.check(False, name, exc)
        return
    recs = data["wallclock"]
    errors = [r for r in recs if "error" in r or not r.get("iops")]
    k.check(len(recs) == 8 and not errors, "every run has a result",
            json.dumps(errors or recs, indent=1)[:2000])
    k.check(all(r.get("busy_us_per_io", 0) > 0 for r in recs),
            "every run has the guest's CPU time per I/O",
            json.dumps([(r["driver"], r["cell"], r.get("busy_us_per_io")) for r in recs]))
    wrong = []
    for r in recs:
        cls = r["cell"].split("-")[0]
        want = EXPECT[r["driver"]][cls]
        if (r.get("path"), r.get("reason")) != want:
            wrong.append(f"{r['driver']} on {cls}: {r.get('path')} ({r.get('reason')}), "
                         f"want {want[0]} ({want[1]})")
    k.check(not wrong, "every variant ran on its path", "\n".join(wrong))
    # The stock driver does not know the bit; ours takes it where offered.
    bits = {(r["driver"], r["cell"].split("-")[0]): r.get("bio_bit") for r in recs}
    k.check(bits[("stock", "ram")] == "0" and bits[("auto", "ram")] == "1"
            and bits[("auto", "slow")] == "0",
            "the bio bit is negotiated by ours only, where the host offers it",
            json.dumps({f"{d}/{c}": b for (d, c), b in bits.items()}))


def test_bad_variant(k):
    cell = bench.Cell("ram", "rnd-read", 1)
    text = f"{cell.id} ram {cell.fio_args(runtime=1)}\n"
    results, _, error = bench.boot("both", ["ram"], text, 300, True,
                                   env={"BENCH_VARIANTS": "stock nosuch request"})
    got = {key: res.get("status") for key, res in results.items()}
    want = {f"{cell.id}/stock": 0, f"{cell.id}/nosuch": 4, f"{cell.id}/request": 0}
    k.check(got == want and error and "exited with 1" in error,
            "a variant the guest cannot bind fails alone, and the guest says so",
            f"statuses {got}, want {want}; boot error: {error}")


def main():
    return ktap.run(PLAN, [
        lambda k, tmp: test_build(k),
        lambda k, tmp: test_both_needs_rename(k),
        test_quick_run,
        lambda k, tmp: test_bad_variant(k),
    ], "vblk-bench-guest-", why_lines=20)


if __name__ == "__main__":
    sys.exit(main())
