# SPDX-License-Identifier: GPL-2.0
"""The benchmark's targets (P1-P5 of the issue), as data.

Each target names the cells it applies to and the checks made in each of
them; analyse.evaluate() applies the table to an analysis.

- "cells": which cells: any of "class", "workload" (a name or a list of
  names) and "min_depth"; {} is every cell.
- "checks": each compares the ratio of one figure between two variants,
  "a" to "b" ("iops": the median over rounds of the per-round ratios;
  "insn_per_io": the ratio of the medians), with "op" and "threshold".
  A "b" that is a list means the best of them: the check takes the
  ratio to each and keeps the one least in the target's favour, and a
  miss says which path "a" ran.  A check may narrow the target's cells
  with its own "cells"; one with "required": False counts only where
  its ratio was measured (otherwise a missing ratio makes the verdict
  incomplete).
- "report": "all" lists every cell's ratios, "misses" only the checks
  that failed.
- "probe": instead of cells, a check on the host probe's cost in ms
  (the median over QEMU starts of bio=on less bio=off).

A target is a pass when every check passed, a miss when any failed,
incomplete when some could not be made, n/a when none could.
"""

TARGETS = [
    {"id": "P1",
     "description": "ram 4k randread QD1 and QD16: bio >= 1.30x stock IOPS and "
                    "<= 0.75x stock instructions/I/O",
     "cells": {"class": "ram", "workload": "rnd-read"},
     "checks": [{"figure": "iops", "a": "bio", "b": "stock", "op": ">=", "threshold": 1.30},
                {"figure": "insn_per_io", "a": "bio", "b": "stock", "op": "<=",
                 "threshold": 0.75}],
     "report": "all"},
    {"id": "P2",
     "description": "slow sequential (QD16): request beats bio, auto within 3% of request",
     "cells": {"class": "slow", "workload": ["seq-read", "seq-write"], "min_depth": 2},
     "checks": [{"figure": "iops", "a": "request", "b": "bio", "op": ">", "threshold": 1.0},
                {"figure": "iops", "a": "auto", "b": "request", "op": ">=",
                 "threshold": 0.97}],
     "report": "all"},
    {"id": "P3",
     "description": "every cell: auto >= 0.97x the better fixed path (IOPS)",
     "cells": {},
     "checks": [{"figure": "iops", "a": "auto", "b": ["request", "bio"], "op": ">=",
                 "threshold": 0.97}],
     "report": "misses"},
    {"id": "P4",
     "description": "every cell: request >= 1.00x stock IOPS; on ram <= 0.93x stock "
                    "instructions/I/O",
     "cells": {},
     "checks": [{"figure": "iops", "a": "request", "b": "stock", "op": ">=",
                 "threshold": 1.0},
                {"figure": "insn_per_io", "a": "request", "b": "stock", "op": "<=",
                 "threshold": 0.93, "cells": {"class": "ram"}, "required": False}],
     "report": "misses"},
    {"id": "P5",
     "description": "the host probe adds <= 20 ms to device realize",
     "probe": {"op": "<=", "threshold": 20.0}},
]
