# SPDX-License-Identifier: GPL-2.0
"""Sphinx configuration of the vblk-adaptive documentation (make docs).

The pages are kernel reStructuredText under Documentation/block/, tied
together by block/index.rst; the ABI file is plain text, as in the kernel.
"""
import os
import re

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version():
    """PACKAGE_VERSION of dkms.conf: the project's one version string."""
    with open(os.path.join(_ROOT, "dkms.conf"), encoding="utf-8") as f:
        m = re.search(r'^PACKAGE_VERSION="([^"]+)"$', f.read(), re.M)
    if not m:
        raise RuntimeError("dkms.conf has no PACKAGE_VERSION")
    return m.group(1)


project = "vblk-adaptive"
version = release = _version()
root_doc = "block/index"
exclude_patterns = ["ABI"]
html_title = f"vblk-adaptive {version}"
