# SPDX-License-Identifier: GPL-2.0
"""The benchmark's analysing stage: from results.json's raw records to an
analysis (medians, spreads, ratios between variants, paths used) and the
verdicts of the targets of targets.py.  No guest, no formatting of pages.

An analysis is a dict:

- "drivers": the variants, in the order they ran;
- "cells": one dict per cell (id, label, class, workload, depth) with
  "drivers": {variant: rounds, iops, iops_min, iops_max,
  iops_spread_pct, lat_mean_us, clat_p99_us, busy_us_per_io (when
  measured), paths, host_offered, reasons, insn_per_io, insn_spread_pct}
  and "ratios": {"iops" | "insn_per_io": {"A/B": {"median", "min",
  "max", "n"}}};
- "probe": the host probe's measurement, as measured;
- "targets": [{id, target, status, details}].
"""

import operator
import statistics

from cells import Cell
from targets import TARGETS

FIGURES = {"iops": "IOPS", "insn_per_io": "instructions/I/O"}
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def spread_pct(values):
    """(max - min) / median, in percent."""
    med = statistics.median(values)
    return (max(values) - min(values)) / med * 100 if med else 0.0


def _driver_summary(recs, ins):
    s = {"rounds": len(recs)}
    if recs:
        iops = [r["iops"] for r in recs]
        s.update(iops=statistics.median(iops), iops_min=min(iops), iops_max=max(iops),
                 iops_spread_pct=spread_pct(iops),
                 lat_mean_us=statistics.median(r["lat_mean_us"] for r in recs),
                 clat_p99_us=statistics.median(r["clat_p99_us"] for r in recs),
                 paths=sorted({r["path"] for r in recs}),
                 host_offered=sorted({"yes" if r["host_probe"].get("offered") else "no"
                                      for r in recs if r.get("host_probe")}),
                 reasons=sorted({r["reason"] for r in recs}))
        busy = [r["busy_us_per_io"] for r in recs if "busy_us_per_io" in r]
        if busy:
            s["busy_us_per_io"] = statistics.median(busy)
    if ins:
        s.update(insn_per_io=statistics.median(ins),
                 insn_spread_pct=spread_pct(ins) if len(ins) > 1 else None)
    return s


def summarize(data, cells, drivers):
    """The "cells" of an analysis: per cell and variant, medians, spreads,
    paths, instructions/I/O; per pair of variants, their ratios.

    IOPS ratios are taken within a round and their median (and range)
    over rounds is reported: the runs of one round are seconds apart,
    rounds minutes apart, and the host's speed drifts between them.
    Instructions/I/O: the ratio of the medians."""
    out = []
    for c in cells:
        entry = {"id": c.id, "label": c.label, "class": c.cls, "workload": c.workload,
                 "depth": c.depth, "drivers": {}, "ratios": {"iops": {}, "insn_per_io": {}}}
        by_round = {}
        for d in drivers:
            recs = [r for r in data["wallclock"]
                    if r["cell"] == c.id and r["driver"] == d and "iops" in r]
            ins = [r["insn_per_io"] for r in data["insn"]
                   if r["cell"] == c.id and r["driver"] == d and "insn_per_io" in r]
            entry["drivers"][d] = _driver_summary(recs, ins)
            by_round[d] = {r["round"]: r["iops"] for r in recs}
        for a in drivers:
            for b in drivers:
                if a == b:
                    continue
                pairs = [by_round[a][r] / by_round[b][r] for r in by_round[a]
                         if by_round[b].get(r)]
                if pairs:
                    entry["ratios"]["iops"][f"{a}/{b}"] = {
                        "median": statistics.median(pairs), "min": min(pairs),
                        "max": max(pairs), "n": len(pairs)}
                x = entry["drivers"][a].get("insn_per_io")
                y = entry["drivers"][b].get("insn_per_io")
                if x is not None and y:
                    entry["ratios"]["insn_per_io"][f"{a}/{b}"] = {"median": x / y}
        out.append(entry)
    return out


def ratio_stats(cell, a, b, figure="iops"):
    """{"median", ...} of @a against @b in the analysis @cell, or None."""
    return cell.get("ratios", {}).get(figure, {}).get(f"{a}/{b}")


def ratio(cell, a, b, figure="iops"):
    """The ratio of @a to @b in the analysis @cell, or None."""
    st = ratio_stats(cell, a, b, figure)
    return None if st is None else st["median"]


def selected(cell, sel):
    """Whether the analysis @cell is one of the cells @sel names."""
    if "class" in sel and cell["class"] != sel["class"]:
        return False
    if "workload" in sel:
        w = sel["workload"]
        if cell["workload"] not in ([w] if isinstance(w, str) else w):
            return False
    return cell["depth"] >= sel.get("min_depth", 0)


def verdict(checks):
    """Combine checks (True, False, or None when not measured): miss if
    any failed, n/a if none was measured, incomplete if some were not."""
    if False in checks:
        return "miss"
    if all(ok is None for ok in checks):
        return "n/a"
    return "incomplete" if None in checks else "pass"


def fmt_ratio(r, ok=None, op=None, threshold=None):
    """'1.23x'; with three decimals when two would make a miss look like
    a pass (0.997 against >= 1.00)."""
    if r is None:
        return "-"
    text = f"{r:.2f}"
    if ok is False and OPS[op](float(text), threshold):
        text = f"{r:.3f}"
    return text + "x"


def check_cell(cell, chk):
    """One check in one cell: (True/False/None, its text)."""
    a, bs = chk["a"], chk["b"]
    figure = chk["figure"]
    many = not isinstance(bs, str)
    stats = {b: ratio_stats(cell, a, b, figure) for b in ([bs] if not many else bs)}
    if any(st is None for st in stats.values()):
        b = bs if not many else "/".join(bs)
        return None, f"{a}/{b} {FIGURES[figure]} -"
    # The b least in the target's favour.
    worst = (min if chk["op"] in (">=", ">") else max)(stats, key=lambda b: stats[b]["median"])
    st = stats[worst]
    ok = OPS[chk["op"]](st["median"], chk["threshold"])
    notes = []
    if st.get("n", 0) >= 2 and figure == "iops":
        notes.append(f"rounds {st['min']:.2f}x-{st['max']:.2f}x")
    if many and not ok:
        paths = cell["drivers"].get(a, {}).get("paths", [])
        notes.append(f"{a} ran the {worst} path too" if paths == [worst]
                     else f"{a} ran the {'/'.join(paths) or 'unknown'} path")
    text = (f"{a}/{worst} {FIGURES[figure]} "
            f"{fmt_ratio(st['median'], ok, chk['op'], chk['threshold'])}")
    return ok, text + (f" ({'; '.join(notes)})" if notes else "")


def evaluate_probe(target, probe):
    chk = target["probe"]
    if not probe.get("measurable"):
        return [None], [probe.get("note", "not measured")]
    fastest = min(probe["ms"]["auto"]) - min(probe["ms"]["off"])
    details = [f"{probe['added_ms']:+.1f} ms to QMP-ready (bio=on vs bio=off, "
               f"median of {len(probe['ms']['auto'])} pairs; fastest starts "
               f"{fastest:+.1f} ms)"]
    rep = probe["reported"][-1] if probe.get("reported") else {}
    if "read-latency-hint" in rep:
        # media-info, read at QMP-ready: the probe itself runs later,
        # once the VM runs
        details.append(f"the device reports {rep['media']}, rotation_rate "
                       f"{rep['rotation-rate']}, read_latency_hint "
                       f"{rep['read-latency-hint']} µs, offered: {rep['offered']}")
    elif "latency-ns" in rep:
        # results recorded before the medium fields
        details.append(f"the device reports {rep['reads']} probe reads, median "
                       f"{rep['latency-ns'] / 1000:.0f} µs, offered: {rep['offered']}")
    return [OPS[chk["op"]](probe["added_ms"], chk["threshold"])], details


def evaluate(cells, probe, table=TARGETS):
    """The targets of @table on analysis @cells and @probe:
    [{id, target, status, details}]."""
    out = []
    for t in table:
        if "probe" in t:
            checks, details = evaluate_probe(t, probe or {})
        else:
            checks, details = [], []
            for cell in cells:
                if not selected(cell, t["cells"]):
                    continue
                texts = []
                for chk in t["checks"]:
                    if not selected(cell, chk.get("cells", {})):
                        continue
                    ok, text = check_cell(cell, chk)
                    if ok is None and chk.get("required", True) is False:
                        continue
                    checks.append(ok)
                    if t["report"] == "all":
                        texts.append(text)
                    elif ok is False:
                        details.append(f"{cell['label']}: {text}")
                if texts:
                    details.append(f"{cell['label']}: {', '.join(texts)}")
        out.append({"id": t["id"], "target": t["description"], "status": verdict(checks),
                    "details": details})
    return out


def analyse(data):
    """The analysis of results.json's dict @data (see the module's doc)."""
    meta = data["meta"]
    cells = [Cell(*c) for c in meta["cells"]]
    summary = summarize(data, cells, meta["drivers"])
    probe = data.get("probe", {})
    return {"drivers": list(meta["drivers"]), "cells": summary, "probe": probe,
            "targets": evaluate(summary, probe)}
