#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""tools/vblk/vmtests.py: how make check reads the guests the selftests
declare.  TAP output (pycotap); exit status 0 only when all pass."""

import os
import sys
import tempfile
import textwrap
import unittest

import pycotap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from vblk import vmtests  # noqa: E402
from vblk.disks import Disk  # noqa: E402


class Declarations(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))

    def test_shell_and_c_declarations_make_vmrun_arguments(self):
        self.write("a_test.sh", """\
            #!/bin/sh
            # vmtest guest g1 --driver ours --env 'X=a b'
            # vmtest disk d1 ram size=16M dev.bio=on
            # vmtest disk d2 null
            echo not a declaration: vmtest guest
            """)
        self.write("b_test.c", """\
            /*
             * vmtest guest g1 --driver ours --env 'X=a b'
             * vmtest disk d1 ram size=16M dev.bio=on
             * vmtest disk d2 null */
            """)
        self.assertEqual(vmtests.declared(self.dir), [
            ("g1", ["--driver", "ours", "--env", "X=a b",
                    "--disk", "d1:ram:size=16M,dev.bio=on", "--disk", "d2:null"],
             ["a_test.sh", "b_test"])])

    def test_one_file_may_declare_several_guests(self):
        self.write("t.sh", """\
            # vmtest guest g2 --driver stock
            # vmtest disk d ram
            # vmtest guest g1 --driver ours
            # vmtest disk d ram
            """)
        self.assertEqual([(n, t) for n, _, t in vmtests.declared(self.dir)],
                         [("g1", ["t.sh"]), ("g2", ["t.sh"])])

    def test_run_adds_tests_after_the_declaring_one(self):
        self.write("b.sh", "# vmtest guest g --driver ours\n# vmtest disk d ram\n"
                   "# vmtest run data_integrity a.sh\n")
        self.write("a.sh", "# vmtest guest g --driver ours\n# vmtest disk d ram\n")
        self.assertEqual(vmtests.declared(self.dir)[0][2], ["a.sh", "b.sh", "data_integrity"])

    def test_with_continues_the_guest_line(self):
        self.write("t.sh", "# vmtest guest g --driver ours\n# vmtest with --env 'A=1 2'\n"
                   "# vmtest disk d ram\n# vmtest with --smp 4\n")
        self.assertEqual(vmtests.declared(self.dir)[0][1],
                         ["--driver", "ours", "--env", "A=1 2", "--disk", "d:ram", "--smp", "4"])
        for text, line in [("# vmtest with --smp 4\n", "t.sh:1"),
                           ("# vmtest guest g\n# vmtest with --disk d:ram\n", "t.sh:2"),
                           ("# vmtest guest g\n# vmtest with\n", "t.sh:2")]:
            self.write("t.sh", text)
            self.assertRefused([line])

    def test_a_backslash_continues_a_declaration(self):
        self.write("t.sh", "# vmtest guest g --driver ours \\\n#\t--smp 4\n"
                   "# vmtest disk d ram size=16M \\\n#   dev.bio=on\n")
        self.write("u.c", "/*\n * vmtest guest g --driver ours \\\n *  --smp 4\n"
                   " * vmtest disk d ram size=16M \\\n * dev.bio=on */\n")
        self.assertEqual(vmtests.declared(self.dir), [
            ("g", ["--driver", "ours", "--smp", "4", "--disk", "d:ram:size=16M,dev.bio=on"],
             ["t.sh", "u"])])
        for text, line in [("# vmtest guest g \\\nrm -rf x\n", "t.sh:1"),
                           (" * vmtest guest g \\\n */\n", "t.sh:1"),
                           ("# vmtest guest g \\", "t.sh:1")]:
            self.write("t.sh", text)
            self.assertRefused([line])

    def test_run_needs_a_guest_and_tests(self):
        for text, line in [("# vmtest run x.sh\n", "t.sh:1"),
                           ("# vmtest guest g\n# vmtest run\n", "t.sh:2")]:
            self.write("t.sh", text)
            self.assertRefused([line])

    def test_a_timeout_follows_the_test_into_every_guest(self):
        self.write("a.sh", "# vmtest timeout 600\n# vmtest guest g1 --driver ours\n"
                   "# vmtest disk d ram\n")
        self.write("b.sh", "# vmtest guest g2 --driver stock\n# vmtest disk d ram\n"
                   "# vmtest run a.sh\n")
        self.assertEqual([(n, t) for n, _, t in vmtests.guests(self.dir)],
                         [("g1", ["a.sh:600"]), ("g2", ["b.sh", "a.sh:600"])])

    def test_a_guest_has_the_time_of_its_tests_and_a_boot(self):
        self.write("settings", "timeout=45\n")
        self.assertEqual(vmtests.run_limit(self.dir, ["a.sh:600", "b.sh", "c"]),
                         vmtests.BOOT_SECONDS + 600 + 45 + 45)
        self.write("settings", "# nothing\n")
        with self.assertRaisesRegex(vmtests.DeclError, "no timeout="):
            vmtests.run_limit(self.dir, ["b.sh"])

    def test_bad_timeouts_are_refused(self):
        for words in ("", "0", "x", "10 20", "3601", "-5"):
            self.write("t.sh", f"# vmtest timeout {words}\n")
            self.assertRefused(["t.sh:1", "SECONDS"])

    def test_guests_come_sorted_by_name(self):
        self.write("a.sh", "# vmtest guest zz --driver ours\n# vmtest disk d file\n")
        self.write("b.sh", "# vmtest guest aa --driver ours\n# vmtest disk d ram\n")
        self.assertEqual([n for n, _, _ in vmtests.guests(self.dir)], ["aa", "zz"])

    def assertRefused(self, words):
        with self.assertRaises(vmtests.DeclError) as cm:
            vmtests.guests(self.dir)
        for w in words:
            self.assertIn(w, str(cm.exception))

    def test_same_name_declared_differently_is_refused(self):
        self.write("a.sh", "# vmtest guest g --driver ours\n# vmtest disk d ram\n")
        self.write("b.sh", "# vmtest guest g --driver ours\n# vmtest disk d file\n")
        self.assertRefused(["guest g", "b.sh", "a.sh"])

    def test_same_guest_under_two_names_is_refused(self):
        self.write("a.sh", "# vmtest guest g1 --driver ours\n# vmtest disk d ram\n")
        self.write("b.sh", "# vmtest guest g2 --driver ours\n# vmtest disk d ram\n")
        self.assertRefused(["g1", "g2", "one name"])

    def test_disk_before_guest_is_refused(self):
        self.write("t.sh", "# vmtest disk d ram\n")
        self.assertRefused(["t.sh:1", "before"])

    def test_unknown_keyword_is_refused(self):
        self.write("t.sh", "# vmtest guest g\n# vmtest disks d ram\n")
        self.assertRefused(["t.sh:2", "vmtest disks"])

    def test_bad_disk_lines_are_refused(self):
        for line, what in [("d", "NAME CLASS"), ("d ram size", "KEY=VALUE"),
                           ("d ram a=1,b=2", "without commas"), ("d/x ram", "not")]:
            self.write("t.sh", f"# vmtest guest g\n# vmtest disk {line}\n")
            self.assertRefused(["t.sh:2", what])

    def test_options_that_belong_elsewhere_are_refused(self):
        for opts in ("--disk d:ram", "--selftests x.sh", "--cmd true", ""):
            self.write("t.sh", f"# vmtest guest {opts}\n")
            self.assertRefused(["t.sh:1"])

    def test_unbalanced_quotes_are_refused(self):
        self.write("t.sh", "# vmtest guest g --env 'X=1\n")
        self.assertRefused(["t.sh:1"])

    def test_a_disk_vmrun_would_refuse_is_refused(self):
        for line, what in [("d nosuch", "CLASS one of"), ("d ram role=Bad", "bad role"),
                           ("d ram expect.Bad=1", "bad expectation"),
                           ("d ram expect.ok=a/b", "bad expectation"),
                           ("d ram colour=red", "unknown disk option")]:
            self.write("t.sh", f"# vmtest guest g --driver ours\n# vmtest disk {line}\n")
            self.assertRefused(["guest g", what])

    def test_roles_and_expectations_reach_the_disk(self):
        self.write("t.sh", "# vmtest guest g --driver ours\n"
                   "# vmtest disk d ram role=discard expect.discard=zeroes expect.tags=8\n")
        (_, args, _), = vmtests.guests(self.dir)
        disk = Disk(args[args.index("--disk") + 1])
        self.assertEqual(disk.role, "discard")
        self.assertEqual(disk.expect, {"discard": "zeroes", "tags": "8"})
        self.assertEqual(disk.dev, {})


class Project(unittest.TestCase):
    def test_the_project_declarations_are_usable(self):
        guests = vmtests.guests(os.path.join(ROOT, "selftests"))
        names = [n for n, _, _ in guests]
        self.assertEqual(len(names), len(set(names)))
        for name, args, tests in guests:
            self.assertIn("--disk", args, name)
            for t in (t.split(":")[0] for t in tests):
                self.assertTrue(os.path.exists(os.path.join(ROOT, "selftests", t)) or
                                os.path.exists(os.path.join(ROOT, "selftests", t + ".c")),
                                f"{name}: no test {t}")

    def test_the_readme_example_is_the_real_test(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        with open(os.path.join(ROOT, "selftests", "vblk_sysfs_rw.sh"), encoding="utf-8") as f:
            test = f.read()
        self.assertIn("```sh\n" + test + "```\n", readme,
                      "README's 'Adding a test' must show selftests/vblk_sysfs_rw.sh as it is")


if __name__ == "__main__":
    unittest.main(testRunner=pycotap.TAPTestRunner(
        message_log=pycotap.LogMode.LogToDiagnostics,
        test_output_log=pycotap.LogMode.LogToDiagnostics))
