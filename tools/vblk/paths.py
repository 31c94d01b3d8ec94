# SPDX-License-Identifier: GPL-2.0
"""Where things are: the checkout, the cache (VBLK_CACHE), the builds
in it, and facts the project defines once.
"""

import hashlib
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.abspath(os.environ.get("VBLK_CACHE", "/var/cache/vblk-adaptive"))

TOOLS = os.path.join(ROOT, "tools")
SELFTESTS = os.path.join(ROOT, "selftests")
QEMU_SRC = os.path.join(CACHE, "qemu", "src")
QEMU_BUILD = os.path.join(CACHE, "qemu", "build")
QEMU = os.path.join(QEMU_BUILD, "qemu-system-x86_64")
FIRMWARE = os.path.join(CACHE, "firmware")
# The Python the tools and tests run on (Debian's, with its packages).
PYTHON = "/usr/bin/python3"


def feature_bit():
    """VIRTIO_BLK_F_BIO from the project's one definition of it."""
    with open(os.path.join(ROOT, "include", "uapi", "linux", "virtio_blk_bio.h")) as f:
        return int(re.search(r"#define VIRTIO_BLK_F_BIO\s+(\d+)", f.read()).group(1))


def kernel_env():
    """The guest kernel's facts tools/get-kernel.sh wrote (KVER, KDIR, KSRC, ...)."""
    env = {}
    path = os.path.join(CACHE, "kernel", "env")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} missing: run tools/get-kernel.sh")
    with open(path) as f:
        for line in f:
            key, _, val = line.strip().partition("=")
            env[key] = val
    return env


# This checkout's key in the cache (VBLK_CHECKOUT of tools/lib.sh): what
# is built from its sources there is its own.
CHECKOUT = hashlib.md5(ROOT.encode()).hexdigest()[:12]

# Our module built under another name (tools/build-module.sh --name), to
# load beside the stock virtio_blk: the default module of driver "both".
BENCH_MODULE = "vblk_bench"
BENCH_KO = os.path.join(CACHE, f"module-{BENCH_MODULE}-{CHECKOUT}", "guest",
                        f"{BENCH_MODULE}.ko")
