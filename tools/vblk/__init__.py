# SPDX-License-Identifier: GPL-2.0
"""The project's tools as one package; the entry points are thin scripts
beside it (tools/vmrun, tools/check.py, tools/demo.py) and the benchmark
(tools/bench/).

paths     the checkout, the cache (VBLK_CACHE) and the builds in it
util      sizes, processes, files
disks     host storage of each disk class and its QEMU arguments
qmp       the QMP client
vm        a guest under TCG: build steps, command line, run, host actions
vmrun     the vmrun command line
vmtests   the guests make check boots and the tests each one runs
check     make check
demo      make demo
"""
