#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Where the guest's instructions per I/O go, per kernel symbol.

For each driver variant and queue depth, two guests run the same fio cell
with N1 and N2 I/Os under the symprof TCG plugin (tools/bench/symprof.c),
which counts executed instructions per kernel translation block.  The
guest asks the host for a snapshot of the counters just before and just
after fio, so only the fio run is counted, not the boot.  Blocks are
matched to the guest's own /proc/kallsyms (the guest boots with nokaslr
and prints its text symbols after the run) and summed per symbol; the
difference of the two boots divided by the difference of their I/O
counts gives instructions per I/O for every symbol.  User space is one
bucket.  fio's own start and exit cancel out; what is left is the cost
of one I/O, which is what tools/bench's targets P1 and P4 count.

Output: OUT/profile.json (every symbol) and OUT/profile.md (per-module
totals and the top symbols, side by side for the variants).
"""

import argparse
import base64
import bisect
import collections
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure  # noqa: E402

PLUGIN_SRC = os.path.join(measure.BENCH, "symprof.c")
QEMU_SRC = measure.paths.QEMU_SRC


def log(msg):
    print(f"profile: {msg}", flush=True)


def build_plugin():
    """Compile symprof.c against the bench QEMU's plugin header; cached by
    the source's hash."""
    with open(PLUGIN_SRC, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    so = os.path.join(measure.paths.CACHE, "qemu", f"symprof-{key}.so")
    if not os.path.exists(so):
        cflags = subprocess.run(["pkg-config", "--cflags", "glib-2.0"], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.split()
        tmp = so + ".tmp"
        subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", *cflags,
                        "-I", os.path.join(QEMU_SRC, "include", "qemu"),
                        "-o", tmp, PLUGIN_SRC], check=True)
        os.rename(tmp, so)
    return so


class Symbols:
    """Text symbols of one guest boot, for address lookups."""

    def __init__(self, lines):
        syms = []
        for line in lines:
            fields = line.split()
            if len(fields) < 3:
                continue
            name = fields[2]
            if len(fields) > 3:
                name += " " + fields[3]         # "[module]"
            syms.append((int(fields[0], 16), name))
        syms.sort()
        self.addrs = [a for a, _ in syms]
        self.names = [n for _, n in syms]
        if not self.addrs or self.addrs[len(self.addrs) // 2] == 0:
            raise RuntimeError("guest /proc/kallsyms has no addresses")

    def lookup(self, addr):
        i = bisect.bisect_right(self.addrs, addr) - 1
        return self.names[i] if i >= 0 else "?"


def ksyms_from_output(lines):
    try:
        begin = lines.index("KSYMS-BEGIN")
        end = lines.index("KSYMS-END", begin)
    except ValueError:
        raise RuntimeError("the guest printed no symbols") from None
    blob = base64.b64decode("".join(lines[begin + 1:end]))
    return Symbols(gzip.decompress(blob).decode().splitlines())


class Snapshots:
    """The host side of the guest's "snap NAME" requests: the plugin
    writes its counts so far into DIR/NAME through its control FIFO."""

    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.fifo = os.path.join(tmpdir, "ctl")
        os.mkfifo(self.fifo)

    def take(self, name):
        if not re.fullmatch(r"[\w.-]+", name):
            raise RuntimeError(f"bad snapshot name '{name}'")
        path = os.path.join(self.dir, name)
        with open(self.fifo, "w") as f:
            f.write(f"snap {path}\n")
        deadline = time.time() + 60
        while not os.path.exists(path):
            if time.time() > deadline:
                raise RuntimeError(f"no snapshot {name} from the plugin")
            time.sleep(0.02)
        return {}

    def counts(self, name):
        """{block address or 'user'/'lost': instructions} of one snapshot."""
        out = {}
        with open(os.path.join(self.dir, name)) as f:
            for line in f:
                key, n = line.split()
                out[key] = int(n)
        return out


def profile_boot(plugin, driver, cell, ios, host_bio):
    """One boot doing @ios I/Os of @cell: (instructions per symbol between
    the snapshots around fio, I/Os)."""
    tmp = tempfile.mkdtemp(prefix="vblk-profile-")
    output = []
    try:
        snaps = Snapshots(tmp)
        text = f"{cell.id} {cell.cls} {cell.fio_args(ios=ios)}\n"
        results, _, error = measure.boot(
            driver, [cell.cls], text, 300 + ios // 100, host_bio,
            qemu_args=["-plugin", f"{plugin},out={tmp}/exit,ctl={snaps.fifo}"],
            append="nokaslr", env={"BENCH_KALLSYMS": "1", "BENCH_SNAP": "1"},
            output=output, host_actions={"snap": snaps.take})
        res = results.get(cell.id)
        if error or not res or res["status"] != 0:
            raise RuntimeError(f"{driver} {cell.id} {ios} I/Os: {error or 'cell failed'}")
        syms = ksyms_from_output(output)
        start = snaps.counts(f"{cell.id}-start")
        end = snaps.counts(f"{cell.id}-end")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per_sym = collections.Counter()
    for key, n in end.items():
        n -= start.get(key, 0)
        if key in ("user", "lost"):
            per_sym[f"[{key}]"] += n
        else:
            per_sym[syms.lookup(int(key, 16))] += n
    return per_sym, measure.fio_figures(cell, res)["ios"]


def module_of(sym):
    if sym.endswith("]") and " [" in sym:
        return sym.rsplit(" [", 1)[1][:-1]
    if sym in ("[user]", "[lost]"):
        return sym[1:-1]
    return "vmlinux"


def profile(plugin, driver, cell, n1, n2, host_bio):
    a, ios_a = profile_boot(plugin, driver, cell, n1, host_bio)
    b, ios_b = profile_boot(plugin, driver, cell, n2, host_bio)
    per_io = {s: (b[s] - a[s]) / (ios_b - ios_a) for s in set(a) | set(b)}
    total = sum(per_io.values())
    log(f"{cell.id} {driver}: {total:.0f} instructions/I/O "
        f"({ios_a} and {ios_b} I/Os)")
    return {"total": total, "ios": [ios_a, ios_b], "per_io": per_io}


def report(results, drivers, top):
    """Markdown: per-module totals and the top symbols, per cell."""
    out = []
    for cell_id, by_driver in results.items():
        out += [f"## {cell_id}", "", "Instructions per I/O, per module:", ""]
        mods = collections.defaultdict(dict)
        for d in drivers:
            for s, v in by_driver[d]["per_io"].items():
                mods[module_of(s)][d] = mods[module_of(s)].get(d, 0) + v
        head = "| module | " + " | ".join(drivers) + " |"
        out += [head, "| --- |" + " ---: |" * len(drivers)]
        for m in sorted(mods, key=lambda m: -max(abs(v) for v in mods[m].values())):
            if max(abs(v) for v in mods[m].values()) >= 5:
                out.append(f"| {m} | " + " | ".join(f"{mods[m].get(d, 0):,.0f}"
                                                    for d in drivers) + " |")
        out.append("| **total** | " + " | ".join(f"**{by_driver[d]['total']:,.0f}**"
                                                 for d in drivers) + " |")
        syms = set()
        for d in drivers:
            syms |= set(by_driver[d]["per_io"])
        ranked = sorted(syms, key=lambda s: -max(abs(by_driver[d]["per_io"].get(s, 0))
                                                 for d in drivers))
        out += ["", f"Top {top} symbols:", "", "| symbol | " + " | ".join(drivers) + " |",
                "| --- |" + " ---: |" * len(drivers)]
        for s in ranked[:top]:
            out.append(f"| `{s}` | " + " | ".join(f"{by_driver[d]['per_io'].get(s, 0):,.0f}"
                                                  for d in drivers) + " |")
        out.append("")
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    measure.cell_options(ap, "ram", "profile")
    ap.add_argument("--ios", default="20000,120000",
                    help="N1,N2: I/Os of the two boots (default 20000,120000)")
    ap.add_argument("--top", type=int, default=40, help="symbols listed (default 40)")
    opts = ap.parse_args(argv)
    cells, drivers = measure.cell_choices(ap, opts)
    try:
        n1, n2 = (int(x) for x in opts.ios.split(","))
    except ValueError:
        n1 = n2 = 0
    if not 0 < n1 < n2:
        ap.error("--ios wants N1,N2 with 0 < N1 < N2")

    if not opts.no_prepare:
        measure.prepare_guest()
    plugin = build_plugin()
    host_bio = measure.host_knows_bio()
    os.makedirs(opts.out, exist_ok=True)
    results = {}
    for cell in cells:
        results[cell.id] = {d: profile(plugin, d, cell, n1, n2, host_bio)
                            for d in drivers}
        with open(os.path.join(opts.out, "profile.json"), "w") as f:
            json.dump(results, f, indent=1)
    text = report(results, drivers, opts.top)
    with open(os.path.join(opts.out, "profile.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
