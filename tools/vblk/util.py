# SPDX-License-Identifier: GPL-2.0
"""Small helpers of the tools: sizes, processes, files.
"""

import subprocess

def size_bytes(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower()
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def reap(proc, timeout):
    """Wait up to @timeout s for @proc to exit, then terminate, then kill it."""
    for stop in (None, proc.terminate, proc.kill):
        if stop:
            stop()
        try:
            proc.wait(timeout=timeout if stop is None else 5)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.wait()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def fill_file(f, size):
    """Write @size bytes of a non-zero pattern to the open file @f."""
    chunk = bytes(range(256)) * 4096
    left = size
    while left:
        n = min(left, len(chunk))
        f.write(chunk[:n])
        left -= n
