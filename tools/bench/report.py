# SPDX-License-Identifier: GPL-2.0
"""The benchmark's reporting stage: from an analysis (analyse.py) to
results.md, details.md, results.rst and results.png in the output
directory, and optionally the results page in Documentation/block with
its chart and the data it was rendered from.

The page is results.rst.in (beside this file) filled in with
string.Template; each re-run kept with the data ("reruns") is
rerun.rst.in.  Nothing here measures or judges: the verdicts are the
analysis's."""

import json
import os
import shutil
import string
import textwrap

from analyse import analyse, ratio
from cells import CLASS_TEXT

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(BENCH))
DOC = os.path.join(ROOT, "Documentation", "block", "virtio_blk-adaptive-results.rst")
DOC_DATA = DOC[:-len(".rst")] + ".json"
DOC_IMAGE = "virtio_blk-adaptive-results.png"
TEMPLATE = os.path.join(BENCH, "results.rst.in")
RERUN_TEMPLATE = os.path.join(BENCH, "rerun.rst.in")
# Mean CPUs others may keep busy during a run before its page says "busy"
OTHER_LOAD_MAX = 0.2
# What the results page keeps of the data: no raw records.
DOC_KEYS = ("meta", "source", "analysis", "reruns")


def log(msg):
    print(f"bench: {msg}", flush=True)


def fmt_pct(r):
    return "" if r is None else f" ({(r - 1) * 100:+.1f}%)"


# -- tables: (header, rows) of strings --------------------------------------

def iops_table(analysis):
    """IOPS per variant, the change against stock, auto's path (when
    known for every cell)."""
    drivers = analysis["drivers"]
    paths = all(c["drivers"].get("auto", {}).get("paths") for c in analysis["cells"])
    rows = []
    for c in analysis["cells"]:
        row = [c["label"]]
        for d in drivers:
            iops = c["drivers"].get(d, {}).get("iops")
            text = "-" if iops is None else f"{iops:,.0f}"
            if d != "stock" and "stock" in drivers and iops is not None:
                text += fmt_pct(ratio(c, d, "stock"))
            row.append(text)
        if paths:
            row.append("/".join(c["drivers"]["auto"]["paths"]))
        rows.append(row)
    return (["workload"] + [f"{d} IOPS" for d in drivers]
            + (["auto's path"] if paths else []), rows)


def insn_table(analysis):
    """Instructions per I/O of the cells where they were counted."""
    drivers = analysis["drivers"]
    rows = []
    for c in analysis["cells"]:
        if not any("insn_per_io" in c["drivers"].get(d, {}) for d in drivers):
            continue
        row = [c["label"]]
        for d in drivers:
            ins = c["drivers"].get(d, {}).get("insn_per_io")
            text = "-" if ins is None else f"{ins:,.0f}"
            if d != "stock" and ins is not None:
                text += fmt_pct(ratio(c, d, "stock", "insn_per_io"))
            row.append(text)
        rows.append(row)
    return ["workload"] + drivers, rows


def detail_table(analysis):
    """Per cell and variant: spread, latency, guest CPU time (when
    measured), host's offer, path used, instructions/I/O."""
    drivers = analysis["drivers"]
    cells = analysis["cells"]
    busy = any("busy_us_per_io" in c["drivers"].get(d, {}) for c in cells for d in drivers)
    rows = []
    for c in cells:
        for d in drivers:
            s = c["drivers"].get(d, {})
            if not s.get("rounds") and "insn_per_io" not in s:
                continue
            ins = s.get("insn_per_io")
            row = [c["label"], d, str(s.get("rounds", 0)),
                   f"{s['iops_spread_pct']:.1f}%" if "iops" in s else "-",
                   f"{s['lat_mean_us']:.0f}" if "iops" in s else "-",
                   f"{s['clat_p99_us']:.0f}" if "iops" in s else "-"]
            if busy:
                row.append(f"{s['busy_us_per_io']:.0f} of {1e6 / s['iops']:.0f}"
                           if "busy_us_per_io" in s else "-")
            row += ["/".join(s.get("host_offered", [])) or "-",
                    "/".join(s.get("paths", [])) or "-",
                    "-" if ins is None else f"{ins:,.0f}"
                    + (fmt_pct(ratio(c, d, "stock", "insn_per_io")) if d != "stock" else "")]
            rows.append(row)
    return (["workload", "driver", "rounds", "IOPS spread", "mean lat (µs)", "p99 clat (µs)"]
            + (["guest CPU busy of wall (µs/I/O)"] if busy else [])
            + ["host offered bio", "path used", "instructions/I/O"], rows)


def targets_table(tgts):
    return (["target", "status", "requirement", "details"],
            [[t["id"], t["status"], t["target"], "; ".join(t["details"]) or "-"]
             for t in tgts])


def markdown(header, rows, numeric=True):
    """A markdown table; @numeric right-aligns every column but the first."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(" ---: " if i and numeric else " --- "
                            for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def rst_cell(text):
    """A table cell's text that reStructuredText reads as just that text
    (a lone '-' would be a bullet list)."""
    text = str(text)
    return "\\" + text if text[:1] in "-+*" and text[1:2] in ("", " ") else text


def rst_table(header, rows, last_max=40):
    """A simple table, one line per row; the last column's text runs on
    past its rule, which is at most @last_max wide."""
    header = [rst_cell(h) for h in header]
    rows = [[rst_cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    widths[-1] = max(len(header[-1]), min(widths[-1], last_max))
    rule = "  ".join("=" * w for w in widths)

    def line(r):
        return "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
    return "\n".join([rule, line(header), rule] + [line(r) for r in rows] + [rule])


# -- the chart ---------------------------------------------------------------

def chart(analysis, path, smoke):
    """Bars: IOPS and instructions/I/O of each variant relative to stock
    (@smoke marks the figures as not final)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drivers = analysis["drivers"]
    cells = analysis["cells"]
    others = [d for d in drivers if d != "stock"]
    ins_cells = [c for c in cells if any("insn_per_io" in c["drivers"].get(d, {})
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
            vals = [(ratio(c, d, "stock", key) if "stock" in drivers
                     else c["drivers"].get(d, {}).get(key)) or 0 for c in pcells]
            ax.bar([x + (i - (len(others) - 1) / 2) * width for x in range(len(pcells))],
                   vals, width, label=d)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(pcells)))
        ax.set_xticklabels([f"{c['class']}\n{c['workload']}\nQD{c['depth']}" for c in pcells],
                           fontsize=7)
        ax.set_xlim(-0.6, max(len(pcells), 2) - 0.4)
        ax.set_title(title + ("  [not final results]" if smoke else ""))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- pages --------------------------------------------------------------------

def banner(meta):
    """The warning a page of a smoke run or of a busy machine carries."""
    # The end load average counts the bench's own last guests: only the
    # start's says something about others; during the run, CPU accounting.
    if meta.get("smoke"):
        return ("SMOKE RUN (--quick): these figures only show that the benchmark "
                "works; they are not results.")
    if meta["loadavg_start"][0] > 1.0 or meta.get("other_load", 0.0) > OTHER_LOAD_MAX:
        return ("The machine was busy during this run (see the load average): the "
                "figures are noisy and are not final results.")
    return ""


def others_text(meta):
    if "other_load" not in meta:
        return ""
    return (f"; other processes kept {meta['other_load']:.2f} CPUs busy on average "
            "during the run")


def host_note(meta):
    return ("the host's bio property set to auto on every disk"
            if meta["host_bio_property"] else
            "on a QEMU without the bio property (host series not applied), so auto "
            "could not use the host's hint")


def variants_text(drivers):
    names = {"stock": "the stock in-tree ``virtio_blk``"}
    ours = [d for d in drivers if d != "stock"]
    parts = [names[d] for d in drivers if d in names]
    if ours:
        parts.append("our driver's " + ", ".join(ours[:-1])
                     + (" and " if len(ours) > 1 else "") + ours[-1]
                     + (" variants" if len(ours) > 1 else " variant"))
    return " and ".join(parts)


def facts(meta):
    """The run's facts, one line each (the markdown report)."""
    return [f"date {meta['date']}, commit {meta['git_commit'][:12]}"
            f"{' (dirty tree)' if meta.get('git_dirty') else ''}",
            f"{meta['qemu']}, TCG, guest kernel {meta['guest_kernel']}",
            f"{meta['cpus']} host CPUs, load average {meta['loadavg_start'][0]:.1f} at start"
            + others_text(meta),
            f"{meta['rounds']} rounds of {meta['runtime']} s per cell; instructions from "
            f"{meta['insn_ios'][0]} vs {meta['insn_ios'][1]} I/Os",
            host_note(meta)]


def reflow(text, width=76):
    """Fill every prose paragraph of reStructuredText @text to @width
    (the template's paragraphs are ragged once filled in); titles,
    tables, directives, comments and literal blocks stay as they are."""
    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        prose = (block.strip() and not block.startswith((" ", "\n", ".."))
                 and not any(set(x) <= set("=- ") for x in lines)
                 and not any(x.startswith(("- ", "* ", " ")) for x in lines))
        out.append(textwrap.fill(" ".join(lines), width, break_long_words=False,
                                 break_on_hyphens=False) if prose else block)
    return "\n\n".join(out)


def render_rerun(rerun, template=RERUN_TEMPLATE):
    """A re-run kept with the data: its note, command and tables."""
    meta = rerun["meta"]
    title = f"{rerun['title']} ({meta['date'][:10]})"
    fact = (f"{meta['cpus']} host CPUs, load average {meta['loadavg_start'][0]:.1f} at "
            f"start, other processes {meta['other_load']:.2f} CPUs on average")
    with open(template, encoding="utf-8") as f:
        tpl = string.Template(f.read())
    return reflow(tpl.substitute(title=title, title_rule="=" * len(title), note=rerun["note"],
                          facts=fact, command=meta["command"],
                          iops_table=rst_table(*iops_table(rerun["analysis"])),
                          insn_table=rst_table(*insn_table(rerun["analysis"]))))


def render_rst(data, image, data_file, template=TEMPLATE):
    """The results page: @template filled in from @data (meta, analysis,
    and any "reruns" and "source" note)."""
    meta, analysis = data["meta"], data["analysis"]
    cells = analysis["cells"]
    classes = list(dict.fromkeys(c["class"] for c in cells))
    depths = sorted({c["depth"] for c in cells})
    warn = banner(meta)
    busy = any("busy_us_per_io" in s for c in cells for s in c["drivers"].values())
    with open(template, encoding="utf-8") as f:
        tpl = string.Template(f.read())
    return reflow(tpl.substitute(
        banner=f"\n.. warning::\n\n   {warn}\n" if warn else "",
        date=meta["date"], commit=meta["git_commit"][:12],
        dirty=" (with uncommitted changes)" if meta.get("git_dirty") else "",
        kernel=meta["guest_kernel"], qemu=meta["qemu"], cpus=meta["cpus"],
        load=f"{meta['loadavg_start'][0]:.1f}", others=others_text(meta),
        classes="; ".join(CLASS_TEXT.get(c, c) for c in classes),
        depths=" and ".join(map(str, depths)), variants=variants_text(analysis["drivers"]),
        rounds=meta["rounds"], runtime=meta["runtime"], host_note=host_note(meta),
        n1=f"{meta['insn_ios'][0]:,}", n2=f"{meta['insn_ios'][1]:,}",
        provenance=(data["source"].strip() + " ") if data.get("source") else "",
        command=meta["command"],
        iops_table=rst_table(*iops_table(analysis)), image=image,
        targets_table=rst_table(*targets_table(analysis["targets"])),
        insn_table=rst_table(*insn_table(analysis)),
        reruns="".join(render_rerun(r) for r in data.get("reruns", [])),
        detail_extra="the guest's CPU time per I/O, " if busy else "",
        data_file=data_file))


def render_md(data):
    """results.md: the run's facts, IOPS, targets, instructions, chart."""
    meta, analysis = data["meta"], data["analysis"]
    md = ["# virtio_blk adaptive: benchmark results", ""]
    if banner(meta):
        md += [f"**{banner(meta)}**", ""]
    md += [f"- {x}" for x in facts(meta)]
    md += ["", f"Reproduce: `{meta['command']}`", "", "## IOPS (change against stock)", "",
           markdown(*iops_table(analysis)), "", "## Targets", "",
           markdown(*targets_table(analysis["targets"]), numeric=False), "",
           "## Instructions per I/O", "", markdown(*insn_table(analysis)), "",
           "![chart](results.png)", "", "Per cell and variant: details.md", ""]
    return "\n".join(md)


def render_details_md(data):
    return "\n".join(["# virtio_blk adaptive: benchmark details (medians over rounds)", "",
                      markdown(*detail_table(data["analysis"])), ""])


def rel(path):
    """@path relative to the checkout when it is inside it."""
    r = os.path.relpath(os.path.abspath(path), ROOT)
    return path if r.startswith("..") else r


def write_reports(data, out, doc, doc_path=DOC):
    """results.json (with the analysis), results.md, details.md,
    results.png and results.rst in @out; with @doc, the page at @doc_path,
    its chart, and the data it is rendered from (.json beside it).  Raw
    records are analysed anew; data without them (a page's data) is
    rendered from its analysis.  Returns the targets."""
    if "wallclock" in data:
        data["analysis"] = analyse(data)
    smoke = bool(banner(data["meta"]))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(render_md(data))
    with open(os.path.join(out, "details.md"), "w") as f:
        f.write(render_details_md(data))
    chart(data["analysis"], os.path.join(out, "results.png"), smoke)
    with open(os.path.join(out, "results.rst"), "w") as f:
        f.write(render_rst(data, "results.png", rel(os.path.join(out, "results.json"))))
    if doc:
        doc_dir = os.path.dirname(doc_path)
        doc_data = doc_path[:-len(".rst")] + ".json"
        with open(doc_data, "w", encoding="utf-8") as f:
            json.dump({k: data[k] for k in DOC_KEYS if k in data}, f, indent=1,
                      ensure_ascii=False)
            f.write("\n")
        with open(doc_path, "w") as f:
            f.write(render_rst(data, DOC_IMAGE, rel(doc_data)))
        shutil.copy(os.path.join(out, "results.png"), os.path.join(doc_dir, DOC_IMAGE))
        log(f"wrote {rel(doc_path)}, its chart and its data")
    return data["analysis"]["targets"]
