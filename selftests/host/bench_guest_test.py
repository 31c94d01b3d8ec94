#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The benchmark's plumbing in a real guest, at a tiny size.

tools/bench/bench.py measures wall-clock IOPS with the stock virtio_blk
and ours (built a second time as vblk_bench) loaded side by side in one
guest, rebinding the disks to the variant of each run.  This checks that
second build, that every variant's runs really ran on the path the
variant names (the stock driver, our request path, our bio path, and
auto on the path the host's hint asks for), that the measuring stage's
results.json goes through analysis and reporting, and the error paths:
a bad module name, driver "both" without a renamed module, and a
variant the guest cannot bind.  It measures nothing: a single round of
1-second runs, no instruction counts.

TAP output (pycotap); exit status 0 only when all pass.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import pycotap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, os.path.join(TOOLS, "bench"))
sys.path.insert(0, TOOLS)
import measure  # noqa: E402
from cells import Cell  # noqa: E402
from vblk import paths  # noqa: E402
from vblk.disks import Disk  # noqa: E402
from vblk.vm import VM  # noqa: E402

PY = sys.executable or "python3"
# What each variant must run on: {variant: {class: (path, reason)}}
EXPECT = {
    "stock": {"ram": ("stock", "-"), "slow": ("stock", "-")},
    "request": {"ram": ("request", "io_path module parameter"),
                "slow": ("request", "io_path module parameter")},
    "bio": {"ram": ("bio", "io_path module parameter"),
            "slow": ("bio", "io_path module parameter")},
    "auto": {"ram": ("bio", "read_latency_hint 45 us <= 200 us"),
             "slow": ("request", "read_latency_hint 2000 us > 200 us")},
}


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


class Build(unittest.TestCase):
    def test_build_module_builds_our_module_under_the_bench_name(self):
        # Where the tools look for it (paths.py) is where the script
        # builds it (lib.sh): a build left there earlier proves nothing.
        if os.path.exists(measure.BENCH_KO):
            os.unlink(measure.BENCH_KO)
        p = run(["bash", os.path.join(TOOLS, "build-module.sh"), "--name",
                 measure.BENCH_MODULE])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(os.path.exists(measure.BENCH_KO), measure.BENCH_KO)
        info = run(["modinfo", "-F", "name", measure.BENCH_KO])
        self.assertEqual(info.stdout.strip(), measure.BENCH_MODULE)

    def test_build_module_refuses_a_bad_name_and_builds_nothing(self):
        p = run(["bash", os.path.join(TOOLS, "build-module.sh"), "--name", "Bad-Name"])
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("not a module name", p.stderr)
        self.assertFalse(os.path.exists(
            os.path.join(paths.CACHE, f"module-Bad-Name-{paths.CHECKOUT}")))

    def test_vmrun_refuses_driver_both_with_our_module_named_virtio_blk(self):
        disk = Disk("ram:ram:size=16M")
        vm = VM([disk], driver="both",
                module=os.path.join(paths.ROOT, "guest", "virtio_blk.ko"))
        try:
            with self.assertRaisesRegex(RuntimeError, "another name"):
                vm._overlay(os.devnull)
        finally:
            vm.cleanup()


class QuickRun(unittest.TestCase):
    """One tiny bench.py run (every variant in one boot), shared by the
    tests below; each fails on its own when the run did not give what
    it looks at."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="vblk-bench-guest-")
        cls.out = os.path.join(cls.tmp.name, "out")
        cls.proc = run([PY, os.path.join(TOOLS, "bench", "bench.py"), "--quick",
                        "--no-prepare", "--no-doc", "--classes", "ram,slow",
                        "--workloads", "rnd-read", "--depths", "1", "--runtime", "1",
                        "--insn-classes", "none", "--probe-reps", "1", "--out", cls.out,
                        # auto follows the medium the host reports, which it
                        # measures (30 us to 5 ms on a busy host for the ram
                        # disk): the test pins a fast and a slow medium.
                        "--disk-prop", "ram:x-test-rotation-rate=1",
                        "--disk-prop", "ram:x-test-read-latency-hint=45",
                        "--disk-prop", "slow:x-test-rotation-rate=1",
                        "--disk-prop", "slow:x-test-read-latency-hint=2000"],
                       timeout=900)
        try:
            with open(os.path.join(cls.out, "results.json")) as f:
                cls.data = json.load(f)
            cls.error = None
        except (OSError, ValueError) as exc:
            cls.data, cls.error = None, f"no results.json: {exc}"

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def records(self):
        if self.data is None:
            self.fail(f"{self.error}\n{self.proc.stdout[-3000:]}{self.proc.stderr[-3000:]}")
        return self.data["wallclock"]

    def test_bench_runs_every_variant_in_one_boot(self):
        self.assertEqual(self.proc.returncode, 0,
                         (self.proc.stdout + self.proc.stderr)[-4000:])

    def test_every_run_has_a_result(self):
        recs = self.records()
        errors = [r for r in recs if "error" in r or not r.get("iops")]
        self.assertEqual(len(recs), 8, json.dumps(recs, indent=1)[:2000])
        self.assertEqual(errors, [])

    def test_every_run_has_the_guest_cpu_time_per_io(self):
        missing = [(r["driver"], r["cell"], r.get("busy_us_per_io")) for r in self.records()
                   if not r.get("busy_us_per_io", 0) > 0]
        self.assertEqual(missing, [])

    def test_every_variant_ran_on_its_path(self):
        wrong = []
        for r in self.records():
            cls = r["cell"].split("-")[0]
            want = EXPECT[r["driver"]][cls]
            if (r.get("path"), r.get("reason")) != want:
                wrong.append(f"{r['driver']} on {cls}: {r.get('path')} ({r.get('reason')}), "
                             f"want {want[0]} ({want[1]})")
        self.assertEqual(wrong, [])

    def test_the_bio_bit_is_negotiated_by_ours_only_where_the_host_offers_it(self):
        bits = {(r["driver"], r["cell"].split("-")[0]): r.get("bio_bit")
                for r in self.records()}
        self.assertEqual((bits[("stock", "ram")], bits[("auto", "ram")],
                          bits[("auto", "slow")]), ("0", "1", "1"), bits)

    def test_the_run_is_analysed_and_reported(self):
        self.records()
        analysis = self.data["analysis"]
        self.assertEqual([c["id"] for c in analysis["cells"]],
                         ["ram-rnd-read-qd1", "slow-rnd-read-qd1"])
        ram = analysis["cells"][0]
        self.assertEqual(ram["drivers"]["bio"]["paths"], ["bio"])
        self.assertIn("bio/stock", ram["ratios"]["iops"])
        self.assertEqual([t["id"] for t in analysis["targets"]],
                         ["P1", "P2", "P3", "P4", "P5"])
        with open(os.path.join(self.out, "results.rst")) as f:
            page = f.read()
        self.assertIn("SMOKE RUN", page)
        self.assertNotIn("${", page)
        for name in ("results.md", "details.md", "results.png"):
            self.assertTrue(os.path.exists(os.path.join(self.out, name)), name)
        self.assertFalse(os.path.exists(os.path.join(self.out, "results.partial.json")))


class BadVariant(unittest.TestCase):
    def test_a_variant_the_guest_cannot_bind_fails_alone_and_the_guest_says_so(self):
        cell = Cell("ram", "rnd-read", 1)
        text = f"{cell.id} ram {cell.fio_args(runtime=1)}\n"
        output = []
        results, _, error = measure.boot("both", ["ram"], text, 300, True,
                                         env={"BENCH_VARIANTS": "stock nosuch request"},
                                         output=output)
        got = {key: res.get("status") for key, res in results.items()}
        self.assertEqual(got, {f"{cell.id}/stock": 0, f"{cell.id}/nosuch": 4,
                               f"{cell.id}/request": 0},
                         f"the guest run: {error}; its output ends:\n"
                         + "\n".join(output[-40:]))
        self.assertIn("exited with 1", error or "")


if __name__ == "__main__":
    unittest.main(testRunner=pycotap.TAPTestRunner(
        message_log=pycotap.LogMode.LogToDiagnostics,
        test_output_log=pycotap.LogMode.LogToDiagnostics))
