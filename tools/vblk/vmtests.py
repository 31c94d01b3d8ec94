# SPDX-License-Identifier: GPL-2.0
"""The guests make check boots, and which selftests run in each.

A selftest declares the guests it needs in its own file, in comment
lines of a shell script or a C file (``#``, ``//`` or `` *``)::

    # vmtest guest blk-ours --driver ours
    # vmtest disk plain ram size=64M dev.num-queues=2 dev.bio=off
    # vmtest disk n null size=64M latency-ns=10000000 dev.bio=on

``vmtest guest NAME [OPTION...]`` starts a guest: OPTIONs are tools/vmrun
options (``--driver``, ``--module-param``, ``--env``, ``--smp``, ...,
quoted as in a shell).  Each ``vmtest disk NAME CLASS [KEY=VALUE...]``
after it adds a disk (``--disk NAME:CLASS:KEY=VALUE,...``), and
``vmtest with OPTION...`` more vmrun options, and a line that ends with
a backslash goes on in the next comment line;
``vmtest run TEST...`` names tests that run in that guest right after the
declaring one (general tests such as data_integrity, which need no guest
of their own).  A test may declare several guests.  Tests that declare a
guest of the same name share one boot, and must declare it identically;
two names for the same guest are an error too, so every distinct guest
boots once.  Within a guest, the declaring tests run in the order of
their file names, each followed by its ``vmtest run`` tests.

``vmtest timeout SECONDS`` gives the test of the file another limit than
the 120 s of selftests/settings, wherever it runs (the guest's runner
takes ``NAME:SECONDS``): for a test whose work, not its waiting, takes
long under emulation.

Each disk is checked as tools/vmrun would take it (class, keys such as
``role=WORD`` and ``expect.WORD=VALUE``) before anything boots.
"""

import os
import re
import shlex

from .disks import Disk

DECL = re.compile(r"^\s*(?:#|//|\*)\s*vmtest\s+(\S+)\s*(.*)$")
CONT = re.compile(r"^\s*(?:#|//|\*)(?!/)(.*)$")
TEST_FILE = re.compile(r"^[A-Za-z0-9_-]+\.(sh|c)$")


class DeclError(Exception):
    """A declaration that cannot be used; the message names file and line."""


def _disk_arg(where, words):
    if len(words) < 2:
        raise DeclError(f"{where}: want 'vmtest disk NAME CLASS [KEY=VALUE...]'")
    name, cls, keys = words[0], words[1], words[2:]
    if not re.match(r"^[A-Za-z0-9_-]+$", name):
        raise DeclError(f"{where}: disk name '{name}' is not [A-Za-z0-9_-]+")
    bad = [k for k in keys if "=" not in k or "," in k or k.startswith("=")]
    if bad:
        raise DeclError(f"{where}: disk {name}: want KEY=VALUE without commas, not "
                        f"{' '.join(bad)}")
    return "--disk", ":".join([name, cls] + ([",".join(keys)] if keys else []))


def parse_file(path, settings=None):
    """The guests one test file declares: [(name, [vmrun args], [tests to run
    after it])].  Its timeout, if it declares one, goes into the dict
    @settings."""
    guests = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    n = 0
    while n < len(lines):
        m = DECL.match(lines[n])
        n += 1
        if not m:
            continue
        where = f"{os.path.basename(path)}:{n}"
        kind, rest = m.group(1), m.group(2).strip()
        # A trailing backslash continues the declaration on the next
        # comment line.
        while rest.endswith("\\") and n < len(lines):
            more = CONT.match(lines[n])
            if not more:
                raise DeclError(f"{where}: a continued declaration ends without "
                                "a comment line after it")
            rest = rest[:-1].rstrip() + " " + more.group(1).strip()
            n += 1
        # A C comment's closing */ is not part of the declaration.
        rest = re.sub(r"\s*\*/\s*$", "", rest)
        try:
            words = shlex.split(rest)
        except ValueError as e:
            raise DeclError(f"{where}: {e}") from None
        if kind == "guest":
            if not words or words[0].startswith("-"):
                raise DeclError(f"{where}: want 'vmtest guest NAME [OPTION...]'")
            if "--disk" in words or "--selftests" in words or "--cmd" in words:
                raise DeclError(f"{where}: --disk, --selftests and --cmd do not go "
                                "on a guest line")
            guests.append((words[0], words[1:], []))
        elif kind == "disk":
            if not guests:
                raise DeclError(f"{where}: a disk before any 'vmtest guest'")
            guests[-1][1].extend(_disk_arg(where, words))
        elif kind == "with":
            if not guests:
                raise DeclError(f"{where}: options before any 'vmtest guest'")
            if not words or "--disk" in words or "--selftests" in words or \
                    "--cmd" in words:
                raise DeclError(f"{where}: want 'vmtest with OPTION...' (no --disk, "
                                "--selftests or --cmd)")
            guests[-1][1].extend(words)
        elif kind == "run":
            if not guests:
                raise DeclError(f"{where}: a run before any 'vmtest guest'")
            if not words:
                raise DeclError(f"{where}: want 'vmtest run TEST...'")
            guests[-1][2].extend(words)
        elif kind == "timeout":
            if len(words) != 1 or not re.fullmatch(r"[1-9]\d{0,3}", words[0]) or \
                    int(words[0]) > 3600:
                raise DeclError(f"{where}: want 'vmtest timeout SECONDS' (1 to 3600)")
            if settings is not None:
                settings["timeout"] = int(words[0])
        else:
            raise DeclError(f"{where}: unknown 'vmtest {kind}' "
                            "(guest, with, disk, run or timeout)")
    return guests


def declared(selftests):
    """Guests the test files of directory SELFTESTS declare:
    [(name, args, [tests])], sorted by name."""
    guests = {}
    origin = {}
    timeouts = {}
    for fname in sorted(os.listdir(selftests)):
        if not TEST_FILE.match(fname):
            continue
        test = fname[:-2] if fname.endswith(".c") else fname
        settings = {}
        found = parse_file(os.path.join(selftests, fname), settings)
        if "timeout" in settings:
            timeouts[test] = settings["timeout"]
        for name, args, extra in found:
            if name in guests and guests[name][0] != args:
                raise DeclError(f"guest {name}: {fname} declares it differently from "
                                f"{origin[name]}")
            tests = guests.setdefault(name, (args, []))[1]
            tests.extend(t for t in [test] + extra if t not in tests)
            origin.setdefault(name, fname)
    by_args = {}
    for name, (args, _) in guests.items():
        other = by_args.setdefault(tuple(args), name)
        if other != name:
            raise DeclError(f"guests {other} and {name} are the same guest: "
                            "declare it under one name")
    return [(name, args, [f"{t}:{timeouts[t]}" if t in timeouts else t for t in tests])
            for name, (args, tests) in sorted(guests.items())]


# What a guest needs besides its tests: boot, module, udev, power-off.
BOOT_SECONDS = 180


def default_timeout(selftests):
    """The limit of a test that declares none: selftests/settings'
    timeout= (the guest's runner reads the same file)."""
    with open(os.path.join(selftests, "settings"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("timeout="):
                return int(line.split("=", 1)[1])
    raise DeclError(f"{selftests}/settings: no timeout=")


def run_limit(selftests, tests):
    """The longest a guest running @tests (NAME or NAME:SECONDS, as
    guests() gives them) may take: BOOT_SECONDS and each test's limit.
    A test that hangs is stopped by its own limit, named, before the
    host's."""
    default = default_timeout(selftests)
    return BOOT_SECONDS + sum(int(t.split(":")[1]) if ":" in t else default for t in tests)


def guests(selftests):
    """Every guest make check boots, as declared by the tests in directory
    SELFTESTS: [(name, args, [tests])], sorted by name.  A disk vmrun would
    refuse is an error here already."""
    found = declared(selftests)
    for name, args, _ in found:
        for i, arg in enumerate(args):
            if arg == "--disk" and i + 1 < len(args):
                try:
                    Disk(args[i + 1])
                except ValueError as e:
                    raise DeclError(f"guest {name}: {e}") from None
    return found
