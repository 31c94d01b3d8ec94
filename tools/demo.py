#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""make demo (tools/vblk/demo.py)."""
import sys

from vblk.demo import main

if __name__ == "__main__":
    sys.exit(main())
