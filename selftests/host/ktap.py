# SPDX-License-Identifier: GPL-2.0
"""KTAP output for the host-side test scripts of selftests/host."""

import shutil
import tempfile


class KTAP:
    """Numbered ok / not ok lines; a failure's explanation goes before
    its line as comments (the last @why_lines lines of it)."""

    def __init__(self, why_lines=None):
        self.n = 0
        self.failed = 0
        self.why_lines = why_lines

    def check(self, ok, name, why=""):
        self.n += 1
        if not ok:
            self.failed += 1
            lines = str(why).splitlines()
            if self.why_lines:
                lines = lines[-self.why_lines:]
            for line in lines or [""]:
                print(f"# {line}")
        print(f"{'ok' if ok else 'not ok'} {self.n} {name}", flush=True)

    def attempt(self, name, fn, *args):
        """One check from fn(*args), which returns (ok, why); an exception
        it raises is a failure, explained."""
        try:
            ok, why = fn(*args)
        except Exception as exc:        # a crash of the test is a failure
            ok, why = False, f"{type(exc).__name__}: {exc}"
        self.check(ok, name, why)


def run(plan, tests, prefix, why_lines=None):
    """Print the KTAP header, run each of @tests as test(k, tmp) with a
    scratch directory named @prefix..., and return the exit status: 0
    when all @plan checks ran and passed.  A test that raises is reported
    and the next one runs; its missing checks fail the plan."""
    print("KTAP version 1")
    print(f"1..{plan}")
    k = KTAP(why_lines)
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        for test in tests:
            try:
                test(k, tmp)
            except Exception as exc:    # e.g. a back end that never answers
                print(f"# {test.__name__} stopped: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if k.n != plan:
        print(f"# planned {plan} tests, ran {k.n}")
        return 1
    return 1 if k.failed else 0
