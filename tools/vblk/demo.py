# SPDX-License-Identifier: GPL-2.0
"""make demo: boot one guest with a disk of each class and show, per disk,
what the host found (its probe: media, read latency, whether it offers
VIRTIO_BLK_F_BIO and why), the path our driver chooses by itself at probe
(io_path=auto) and why, and a short side-by-side of one fio job under
three drivers in that one boot: the stock in-tree virtio_blk, ours forced
to the request path and ours forced to the bio path.  Writes a chart
(PNG) and the results (JSON) into --out."""

import argparse
import datetime
import json
import os
import subprocess
import tempfile
import time

from .disks import Disk
from .paths import BENCH_KO, BENCH_MODULE, ROOT, TOOLS
from .vm import VM, prepare

# Every disk offers VIRTIO_BLK_F_BIO (bio=on): the host reports each
# one's medium (rotation_rate, read_latency_hint) and the guest chooses.
DISKS = [
    "ram:ram:bio=on",
    "file:file:bio=on",
    "loopnr:loop-nonrot:bio=on",
    "looprot:loop-rot:bio=on",
    "part:part:bio=on",
    "nullfast:null:bio=on",
    "nullslow:null:latency-ns=2000000,zeroes=0,bio=on",
]

# The drivers of the side-by-side, in the order the guest runs them:
# "stock" is the in-tree virtio_blk, the others ours with that io_path.
DRIVERS = ("stock", "request", "bio")

# fio jobs: name -> (what it is, fio arguments).  The first always runs,
# the second with --seq.
FIO_COMMON = "--ioengine=libaio --direct=1 --bs=4k --iodepth=16"
JOBS = {
    "randread": ("4k random read, QD16, libaio, direct", f"--rw=randread {FIO_COMMON}"),
    "seqread": ("4k sequential read, QD16, libaio, direct", f"--rw=read {FIO_COMMON}"),
}

OUT = os.path.join(ROOT, "out", "demo")


def host_view(qmp, name):
    """What the host reports for disk NAME: its media-info property (QMP
    qom-get), or what x-query-virtio-status says it offers."""
    dev = f"/machine/peripheral/{name}"
    try:
        p = qmp.cmd("qom-get", path=dev, property="media-info")
        return {"offered": bool(p["offered"]), "media": p["media"],
                "rotation_rate": p["rotation-rate"], "latency_us": p["read-latency-hint"],
                "reason": p["probe"]}
    except (RuntimeError, KeyError):
        pass
    view = {"offered": None, "reason": "no media-info property: host series not applied"}
    try:
        st = qmp.cmd("x-query-virtio-status", path=f"{dev}/virtio-backend")
        feats = st["host-features"].get("dev-features", [])
        view["offered"] = any("VIRTIO_BLK_F_BIO" in f for f in feats)
    except (RuntimeError, KeyError):
        pass
    return view


# The host's probe has finished a run and will not run again on its own
# on unchanged storage: every other outcome is final.
PROBE_UNFINISHED = ("not run", "running", "interrupted, runs again")
PROBE_WAIT_S = 120


def host_views(qmp, disks):
    """Wait, at most PROBE_WAIT_S seconds, until the host's probe of
    every disk has finished, then return each one's host_view()."""
    deadline = time.time() + PROBE_WAIT_S
    while True:
        views = {d.name: host_view(qmp, d.name) for d in disks}
        busy = [n for n, v in views.items()
                if v.get("offered") and v.get("reason") in PROBE_UNFINISHED]
        if not busy:
            return views
        if time.time() > deadline:
            raise RuntimeError(f"demo: the host's probe of {', '.join(busy)} did not "
                               f"finish within {PROBE_WAIT_S} s")
        time.sleep(0.1)


def fields(text):
    """KEY=VALUE words of a guest line."""
    return dict(w.split("=", 1) for w in text.split() if "=" in w)


def parse_guest(lines):
    """The guest's DEMO- lines (tools/guest/demo.sh): the auto choice per
    disk, the runs per disk, job and driver, and the failed bindings."""
    auto, runs, bind_failed = {}, {}, []
    for ln in lines:
        words = ln.split()
        if ln.startswith("DEMO-AUTO ") and len(words) >= 2:
            head, _, reason = ln.partition(" reason=")
            auto[words[1]] = dict(fields(head), reason=reason.strip() or None)
        elif ln.startswith("DEMO-RUN ") and len(words) >= 4:
            name, drv, job = words[1:4]
            f = fields(" ".join(words[4:]))
            iops = f.get("iops", "")
            runs.setdefault(name, {}).setdefault(job, {})[drv] = {
                "dev": f.get("dev"), "driver": f.get("driver"), "path": f.get("path"),
                "status": int(f["status"]) if f.get("status", "").isdigit() else None,
                "iops": int(float(iops)) if iops.replace(".", "", 1).isdigit() else None}
        elif ln.startswith("DEMO-BIND ") and len(words) >= 2:
            bind_failed.append(words[1])
    return auto, runs, bind_failed


def complete(disk, jobs):
    """Whether a disk's record has everything the demo shows."""
    auto = disk["auto"]
    if not auto or auto.get("path") not in ("bio", "request"):
        return False
    for job in jobs:
        for drv in DRIVERS:
            r = disk["runs"].get(job, {}).get(drv)
            if not r or r["status"] != 0 or not r["iops"]:
                return False
    return True


def shown(path):
    """PATH relative to the current directory when under it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


# -- the report -------------------------------------------------------------
def latency(h):
    """The host's read_latency_hint and rotation_rate, in words."""
    if "latency_us" not in h:
        return "-"
    lat = f"{h['latency_us']} us" if h["latency_us"] else "latency not reported"
    rot = {0: "rotation not reported", 1: "non-rotating"}.get(h["rotation_rate"],
                                                              f"{h['rotation_rate']} rpm")
    return f"{lat}, {rot}"


def yes_no(v):
    return "?" if v is None else ("yes" if v else "no")


def print_report(res):
    rows = [("disk", "class", "host media", "host reports", "offers", "probe",
             "bit", "auto path", "guest's reason")]
    for d in res["disks"]:
        h, a = d["host"], d["auto"]
        bit = a.get("bio_bit")
        rows.append((d["name"], d["class"], h.get("media", "?"), latency(h),
                     yes_no(h.get("offered")), h["reason"],
                     {"1": "yes", "0": "no"}.get(bit, "?"), a.get("path", "?"),
                     a.get("reason") or "?"))
    print("Per disk: what the host reports (QMP qom-get media-info), whether the")
    print("guest negotiated VIRTIO_BLK_F_BIO (bit), and the path our driver chose at")
    print("probe with io_path=auto (/sys/block/vdX/io_path, io_path_reason):")
    table(rows)
    for job in res["jobs"]:
        print()
        print(f"fio {res['jobs'][job]['title']}, {res['seconds']} s per run, "
              "read IOPS (ratio to stock); * marks the auto path:")
        rows = [("disk",) + tuple(DRIVERS)]
        for d in res["disks"]:
            runs = d["runs"].get(job, {})
            stock = (runs.get("stock") or {}).get("iops")
            cells = [d["name"]]
            for drv in DRIVERS:
                r = runs.get(drv)
                if not r or r["iops"] is None or r["status"] != 0:
                    cells.append("failed  " if r else "-  ")
                    continue
                cell = str(r["iops"])
                if drv != "stock" and stock:
                    cell += f" ({r['iops'] / stock:.2f}x)"
                cells.append(cell + (" *" if drv == d["auto"].get("path") else "  "))
            rows.append(tuple(cells))
        table(rows, right=range(1, len(DRIVERS) + 1))
    print()
    print(f"Caveat: {res['seconds']} s per run under TCG emulation on a shared machine, "
          "not a measurement: make bench measures.")


def table(rows, right=()):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip())


# -- the chart --------------------------------------------------------------
def chart(res, path):
    """Per job a panel; per disk bars for stock, request and bio IOPS,
    the ratio to stock above ours, the auto path's bar outlined."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    jobs = list(res["jobs"])
    disks = res["disks"]
    colours = {"stock": "#9e9e9e", "request": "#1f77b4", "bio": "#ff7f0e"}
    width = 0.27
    fig, axes = plt.subplots(len(jobs), 1, squeeze=False,
                             figsize=(max(8, 1.5 * len(disks)), 4.2 * len(jobs)))
    for ax, job in zip(axes[:, 0], jobs):
        top = 0
        for k, drv in enumerate(DRIVERS):
            for i, d in enumerate(disks):
                r = d["runs"].get(job, {}).get(drv) or {}
                iops = r.get("iops") if r.get("status") == 0 else None
                x = i + (k - 1) * width
                if iops is None:
                    ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
                    continue
                top = max(top, iops)
                auto = d["auto"].get("path") == drv
                ax.bar(x, iops, width, color=colours[drv],
                       edgecolor="black" if auto else colours[drv],
                       linewidth=1.8 if auto else 0.5)
                stock = (d["runs"].get(job, {}).get("stock") or {}).get("iops")
                if drv != "stock" and stock:
                    ax.text(x, iops, f"{iops / stock:.2f}x", ha="center", va="bottom",
                            fontsize=7)
        ax.set_xticks(range(len(disks)))
        ax.set_xticklabels([f"{d['name']}\n({d['class']})\nauto: {d['auto'].get('path', '?')}"
                            for d in disks], fontsize=8)
        ax.set_xlim(-0.6, len(disks) - 0.4)
        ax.set_ylim(0, top * 1.15 if top else 1)
        ax.set_ylabel("read IOPS")
        ax.set_title(f"fio {res['jobs'][job]['title']}: stock virtio_blk, ours on "
                     "request, ours on bio", fontsize=10)
        ax.legend([Patch(color=colours[drv]) for drv in DRIVERS] +
                  [Patch(facecolor="white", edgecolor="black", linewidth=1.8)],
                  list(DRIVERS) + ["auto's path"], fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"make demo: {res['seconds']} s per run under TCG emulation, not a "
                 "measurement (make bench); outlined: the path auto chose", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- main -------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=3, help="fio runtime per run (default 3)")
    ap.add_argument("--seq", action="store_true",
                    help="also a 4k sequential read job (QD16), where merging counts")
    ap.add_argument("--out", default=OUT,
                    help="directory for demo.png and demo.json (default out/demo)")
    opts = ap.parse_args(argv)
    if opts.seconds < 1:
        ap.error("--seconds must be at least 1")

    jobs = ["randread"] + (["seqread"] if opts.seq else [])
    prepare(module=False)
    subprocess.run(["bash", os.path.join(TOOLS, "build-module.sh"), "--name", BENCH_MODULE],
                   check=True)
    disks = [Disk(spec) for spec in DISKS]
    os.makedirs(opts.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vblk-demo-", dir="/var/tmp") as tmp:
        jobfile = os.path.join(tmp, "demo-jobs")
        with open(jobfile, "w") as f:
            for job in jobs:
                f.write(f"{job} {JOBS[job][1]}\n")
        # Boot, four bindings, then one run per disk, job and driver.
        timeout = 300 + len(disks) * len(jobs) * len(DRIVERS) * (opts.seconds + 15)
        # The guest asks for the host's view ("vblk_host demo-host") before
        # it binds our module, once the probe has reported, and again at the
        # end: the first is what the guest's choice is compared with, the
        # last must be the same (nothing changed the medium meanwhile).
        seen = []

        def demo_host(_args):
            seen.append(host_views(vm.qmp, disks))
            return {n: v.get("latency_us") for n, v in seen[-1].items()}

        vm = VM(disks, driver="both", module=BENCH_KO,
                cmd="sh /vblk/files/demo.sh", env={"DEMO_SECONDS": str(opts.seconds)},
                timeout=timeout, files=[os.path.join(TOOLS, "guest", "demo.sh"), jobfile],
                echo=False, host_actions={"demo-host": demo_host})
        print(f"demo: booting a guest with {len(disks)} disks; fio runs "
              f"{len(disks) * len(jobs) * len(DRIVERS)} x {opts.seconds} s ...", flush=True)
        try:
            vm.start()
            status = vm.wait()
            vm.stop()
            healthy = vm.check_console()
        finally:
            vm.cleanup()

    auto, runs, bind_failed = parse_guest(vm.output)
    none = {"reason": "the guest never asked for the host's view"}
    host = seen[0] if seen else {d.name: none for d in disks}
    host_end = seen[-1] if len(seen) > 1 else {d.name: none for d in disks}
    res = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "seconds": opts.seconds,
        "drivers": {"stock": "in-tree virtio_blk",
                    "request": f"ours ({BENCH_MODULE}), io_path=request",
                    "bio": f"ours ({BENCH_MODULE}), io_path=bio"},
        "jobs": {j: {"title": JOBS[j][0], "fio": JOBS[j][1]} for j in jobs},
        "disks": [{"name": d.name, "class": d.cls, "host": host[d.name],
                   "host_end": host_end[d.name],
                   "auto": auto.get(d.name, {}), "runs": runs.get(d.name, {})}
                  for d in disks],
        "guest_status": status,
        "guest_healthy": healthy,
        "bind_failed": bind_failed,
    }
    res["ok"] = bool(status == 0 and healthy and not bind_failed and len(seen) == 2 and
                     all(complete(d, jobs) and d["host"] == d["host_end"]
                         for d in res["disks"]))
    png = os.path.join(opts.out, "demo.png")
    res["chart"] = png
    print_report(res)
    chart(res, png)
    jpath = os.path.join(opts.out, "demo.json")
    with open(jpath, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print(f"chart:   {shown(png)}")
    print(f"results: {shown(jpath)}")
    if not res["ok"]:
        print("demo: the guest run failed or left results out:")
        if status != 0:
            print(f"  guest status {status}")
            for ln in vm.output[-30:]:
                print(f"  | {ln}")
        for ln in vm.splats:
            print(f"  {ln}")
        for drv in bind_failed:
            print(f"  binding the disks to {drv} failed")
        if len(seen) != 2:
            print(f"  the guest asked for the host's view {len(seen)} times, not 2")
        for d in res["disks"]:
            if d["host"] != d["host_end"]:
                print(f"  {d['name']}: the host's view changed during the run: "
                      f"{d['host']} at the start, {d['host_end']} at the end")
        return 1
    return 0
