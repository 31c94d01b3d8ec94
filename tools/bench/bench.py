#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""make bench: fio in guests under the patched QEMU (TCG), comparing the
stock in-tree virtio_blk with our driver's request path, bio path and
automatic choice.

Three stages, one module each beside this entry point:

- measure.py boots the guests and collects every raw figure (wall-clock
  IOPS and latency from the variants taking turns in one guest per
  round, guest instructions per I/O from QEMU's libinsn plugin, the
  cost of the host's probe) into results.json;
- analyse.py turns them into medians, spreads and per-round ratios and
  evaluates the targets, which are the table in targets.py;
- report.py writes results.md, details.md, results.png and results.rst
  into OUT, and for a full run the results page
  Documentation/block/virtio_blk-adaptive-results.rst from the template
  results.rst.in, with its chart and the data it was rendered from
  (virtio_blk-adaptive-results.json; with --quick only with --doc, and
  then labelled as a smoke run).

--from-json measures nothing: it renders the reports again from a
results.json, a results.partial.json or the page's own data.

The machine is shared and has 2 cores: figures from a busy machine are
noise, not results.  Run the full benchmark on a quiet machine.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

import measure
import report
from cells import CLASSES, DEPTHS, DRIVERS, WORKLOADS, Cell
from measure import log

ROOT = measure.ROOT
DOC = report.DOC
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
                    help="QEMU starts per bio mode for P5 (default 10; quick 3; "
                         "0: not measured)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny settings: a smoke test in a few minutes, not results")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "bench"),
                    help="output directory (default out/bench)")
    ap.add_argument("--doc", action=argparse.BooleanOptionalAction,
                    help="write Documentation/block/virtio_blk-adaptive-results.rst "
                         "(default: yes for a full run, no with --quick or for "
                         "the reports of a quick run)")
    ap.add_argument("--disk-prop", action="append", default=[], metavar="CLASS:PROP=VAL",
                    help="a virtio-blk-pci property for the disk of CLASS, e.g. "
                         "loop-rot:rotation_rate=7200 (repeatable; the "
                         "results record it)")
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
    for prop in opts.disk_prop:
        cls, _, kv = prop.partition(":")
        if cls not in CLASSES or not re.fullmatch(r"[a-z][a-z0-9-]*=[^,:\s]+", kv):
            ap.error(f"--disk-prop {prop}: want CLASS:PROP=VALUE with CLASS one of "
                     f"{', '.join(CLASSES)}")
        # The class's disk spec as this run makes it (the meta records it).
        CLASSES[cls] += f",dev.{kv}"
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
    if opts.probe_reps < 0:
        ap.error("--probe-reps must be >= 0 (0: P5 is not measured)")
    return opts


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


def report_again(opts):
    """--from-json: the reports of an earlier (possibly partial) run, or
    of the results page's data."""
    with open(opts.from_json) as f:
        data = json.load(f)
    doc = opts.doc if opts.doc is not None else not data["meta"].get("smoke")
    report.write_reports(data, opts.out, doc)
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
        measure.prepare()
    part = os.path.join(opts.out, "results.partial.json")

    def save(data):
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
    meta = dict(command=reproduce_cmd(argv), smoke=opts.quick, rounds=opts.rounds,
                runtime=opts.runtime, insn_ios=opts.insn_ios, drivers=opts.drivers,
                cells=[(c.cls, c.workload, c.depth) for c in cells],
                classes={c: CLASSES[c] for c in opts.classes},
                fio={c.id: c.fio_args(runtime=opts.runtime) for c in cells})
    data = measure.measure(opts, cells, insn_cells, meta, save)
    doc = opts.doc if opts.doc is not None else not opts.quick
    tgts = report.write_reports(data, opts.out, doc)
    if os.path.exists(part):
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
