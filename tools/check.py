#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""make check (tools/vblk/check.py)."""
import sys

from vblk.check import main

if __name__ == "__main__":
    sys.exit(main())
