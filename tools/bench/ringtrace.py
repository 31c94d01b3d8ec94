#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""How busy each driver keeps the device, seen from the host.

Instruction counts (profile.py) say what a driver costs the guest's CPU;
on slow storage what matters is how long the device sits idle while the
guest has I/O waiting.  This boots one guest per driver variant with
QEMU's virtio-blk trace events on (virtio_blk_handle_read/_write when a
request reaches the device, virtio_blk_rw_complete when the device is
done with it, virtio_queue_notify for the guest's notifications) and
reads, from the last part of the fio run:

- the I/O rate the device saw, and how many requests it had in flight
  on average (the slow class's ring has 4 entries: at most 4);
- the device's own service time per request (arrival to completion);
- the refill gap: from a completion to the next request reaching the
  device, the time the guest takes to turn one completion into the
  next submission (interrupt, completion, wake-up, submission, kick);
- notifications per request.

Output: OUT/ringtrace.json and OUT/ringtrace.md.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measure  # noqa: E402
from report import markdown  # noqa: E402

EVENTS = ("virtio_blk_handle_read", "virtio_blk_handle_write",
          "virtio_blk_rw_complete", "virtio_queue_notify")
LINE = re.compile(r"\d+@(\d+\.\d+):(\w+) (.*)")
REQ = re.compile(r"\breq (0x[0-9a-f]+)")


def log(msg):
    print(f"ringtrace: {msg}", flush=True)


def parse(path):
    """[(time in s, event, request address or None)] of a trace log."""
    events = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m or m.group(2) not in EVENTS:
                continue
            req = REQ.search(m.group(3))
            events.append((float(m.group(1)), m.group(2), req and req.group(1)))
    return events


def analyse(events, window):
    """Figures over the last @window seconds of the traced I/O."""
    if not events:
        raise RuntimeError("the trace has no virtio-blk events: is tracing built in?")
    t_end = events[-1][0]
    events = [e for e in events if e[0] >= t_end - window]
    arrived = {}
    service, gaps = [], []
    notifies = requests = 0
    inflight, area, t_prev, last_done = 0, 0.0, events[0][0], None
    for t, name, req in events:
        area += inflight * (t - t_prev)
        t_prev = t
        if name == "virtio_queue_notify":
            notifies += 1
        elif name == "virtio_blk_rw_complete":
            if req in arrived:
                service.append(t - arrived.pop(req))
                inflight -= 1
            last_done = t
        else:
            arrived[req] = t
            inflight += 1
            requests += 1
            if last_done is not None:
                gaps.append(t - last_done)
                last_done = None
    span = events[-1][0] - events[0][0]
    if not service or not gaps or span <= 0:
        raise RuntimeError("too few requests in the traced window")
    return {
        "iops": len(service) / span,
        "inflight_mean": area / span,
        "service_median_us": statistics.median(service) * 1e6,
        "gap_median_us": statistics.median(gaps) * 1e6,
        "gap_mean_us": statistics.mean(gaps) * 1e6,
        "notifies_per_request": notifies / max(requests, 1),
        "requests": len(service),
    }


def trace_boot(driver, cell, runtime, host_bio):
    tmp = tempfile.mkdtemp(prefix="vblk-ringtrace-")
    try:
        trace = os.path.join(tmp, "trace.log")
        args = ["-msg", "timestamp=on", "-D", trace]
        for ev in EVENTS:
            args += ["-trace", ev]
        text = f"{cell.id} {cell.cls} {cell.fio_args(runtime=runtime)}\n"
        results, _, error = measure.boot(driver, [cell.cls], text, 300 + 2 * runtime,
                                       host_bio, qemu_args=args)
        res = results.get(cell.id)
        if error or not res or res["status"] != 0:
            raise RuntimeError(f"{driver} {cell.id}: {error or 'cell failed'}")
        fig = analyse(parse(trace), runtime * 0.7)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fig["fio_iops"] = measure.fio_figures(cell, res)["iops"]
    fig["path"] = res.get("path")
    return fig


def report(results, drivers):
    rows = [("fio IOPS", "fio_iops", "{:,.0f}"),
            ("device IOPS (traced window)", "iops", "{:,.0f}"),
            ("requests in flight, mean", "inflight_mean", "{:.2f}"),
            ("device service time, median (µs)", "service_median_us", "{:,.0f}"),
            ("completion to next request, median (µs)", "gap_median_us", "{:,.0f}"),
            ("completion to next request, mean (µs)", "gap_mean_us", "{:,.0f}"),
            ("notifications per request", "notifies_per_request", "{:.2f}")]
    out = []
    for cell_id, by_driver in results.items():
        table = [[label] + [fmt.format(by_driver[d][key]) for d in drivers]
                 for label, key, fmt in rows]
        out += [f"## {cell_id}", "", markdown(["figure"] + drivers, table), ""]
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    measure.cell_options(ap, "slow", "ringtrace")
    ap.add_argument("--runtime", type=int, default=10, help="seconds of fio (default 10)")
    opts = ap.parse_args(argv)
    cells, drivers = measure.cell_choices(ap, opts)
    if opts.runtime < 2:
        ap.error("--runtime must be at least 2 seconds")

    if not opts.no_prepare:
        measure.prepare_guest()
    host_bio = measure.host_knows_bio()
    os.makedirs(opts.out, exist_ok=True)
    results = {}
    for cell in cells:
        results[cell.id] = {}
        for d in drivers:
            results[cell.id][d] = trace_boot(d, cell, opts.runtime, host_bio)
            log(f"{cell.id} {d}: {json.dumps(results[cell.id][d])}")
        with open(os.path.join(opts.out, "ringtrace.json"), "w") as f:
            json.dump(results, f, indent=1)
    text = report(results, drivers)
    with open(os.path.join(opts.out, "ringtrace.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
