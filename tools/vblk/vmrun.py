# SPDX-License-Identifier: GPL-2.0
"""Boot a guest under TCG with named disks, run a command in it, stream
its output (KTAP for the selftests) back, and judge the run.

A run fails when the command fails, when the guest does not finish within
the timeout, when QEMU dies (the signal that killed it is named), or when
the guest kernel log shows an Oops, BUG, WARNING, hung task, lockdep report
or panic.  The runner kills only the QEMU it
started (by pid) and removes every file and loop device it made.

Disk classes (NAME:CLASS[:key=val,...]):
  ram          raw file on tmpfs (/dev/shm)
  file         raw file on the root filesystem
  loop-nonrot  host loop device with queue/rotational = 0
  loop-rot     host loop device with queue/rotational = 1
  part         partition 1 of a loop device (rot=0|1, default 0)
  null         QEMU null-co (latency-ns=N, reads return zeroes)
  vhost        vhost-user-blk-pci served by selftests/host/vhost_user_blk.py
               (a memfd image; guest RAM becomes a shared memfd)
Keys: size=64M, latency-ns=N (null), rot=0|1 (part),
      fill=1 (ram, file, loop-*, part: write the whole image first, so the
      guest never reads a hole and no write allocates host pages),
      dev.PROP=VAL (virtio-blk-pci property, vhost-user-blk-pci for vhost),
      blk.KEY=VAL (-blockdev key), absent=1 (the guest is not expected to
      make a disk of it: not counted in VBLK_NDISKS/VBLK_DISK_INFO, named
      in VBLK_ABSENT_DISKS), role=WORD (what a test does with the disk,
      for the guest only: VBLK_DISK_ROLES, vblk_role_disks).  vhost only: cfg.FIELD=VAL (virtio_blk_config
      field), feat.NAME=on|off (feature bit), vu.lenient=LIMIT[+LIMIT]
      (limits the back end does not enforce; see the back end's --help),
      vu.cache=writeback (a volatile write cache that flushes persist, over
      an image file in /dev/shm: "backend NAME power-cut", "replug NAME"),
      hotplug=1 (not attached at boot, so the firmware never drives it:
      the guest asks for it with "plug NAME"; named in VBLK_HOTPLUG_DISKS
      and left out of VBLK_NDISKS/VBLK_DISK_INFO).
The guest sees each disk with serial NAME.  A vhost back end that saw a
request break the limits it advertised, or a protocol error, fails the run.

The guest can ask the host for an action by printing a line
"VBLK-HOST <action> <args>" on its control channel; the runner replies
"VBLK-HOST-REPLY <status> <json>".  Actions: qmp <json-command>,
device_del <id> (waits for DEVICE_DELETED), plug <disk> (attaches a
hotplug=1 disk), migrate [DISK.PROP=VAL ...]
(live migration to a new QEMU on the same storage, the properties set on
the destination's devices; the run carries on there), backend <disk>
<fault> (a fault of a vhost disk's back end: break-used-id sends it
SIGUSR1, so the next used element it writes has an out-of-range id;
power-cut sends it SIGUSR2, which drops what its volatile cache did not
persist and fails every later request; an intended fault does not fail
the run, and its "fault:" lines are shown), backend <disk> set
cfg.FIELD=VALUE ... (the vhost disk's back end changes those config
fields and sends a configuration change notification), replug <disk> (a
vhost disk with vu.cache=writeback, after device_del: a new back end on
the same image file, attached again).
"""

import argparse
import signal
import subprocess
import sys

from .disks import Disk
from .vm import VM, selftests_cmd

def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", choices=("ours", "stock", "both", "none"), default="ours",
                    help="virtio_blk to load: ours (guest/virtio_blk.ko), the stock "
                         "in-tree module, both (the stock one binds the disks, ours "
                         "is loaded beside it: --module, by default the vblk_bench build of "
                         "tools/build-module.sh --name vblk_bench) or none (the command "
                         "loads it)")
    ap.add_argument("--module", metavar="KO",
                    help="our module's file (default guest/virtio_blk.ko, "
                         "for --driver both the vblk_bench build)")
    ap.add_argument("--module-param", action="append", default=[], metavar="K=V",
                    help="virtio_blk module parameter (repeatable)")
    ap.add_argument("--disk", action="append", default=[], metavar="NAME:CLASS[:k=v,...]")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--cmd", help="shell command to run in the guest (cwd /selftests)")
    group.add_argument("--selftests", help="space-separated selftests to run (KTAP)")
    ap.add_argument("--timeout", type=int, default=300, help="hard limit, seconds")
    ap.add_argument("--qemu", help="QEMU binary (default: the bench's build)")
    ap.add_argument("--machine", default="pc")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", default="1G")
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--no-udev", action="store_true", help="do not start systemd-udevd")
    ap.add_argument("--qemu-arg", action="append", default=[], help="extra QEMU argument")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment variable for the guest command (repeatable)")
    ap.add_argument("--file", action="append", default=[], metavar="HOST[:GUEST]",
                    help="copy a host file or directory into the guest "
                         "(default /vblk/files/NAME); its files replace the image's")
    opts = ap.parse_args()

    try:
        disks = [Disk(spec) for spec in opts.disk]
    except ValueError as exc:
        ap.error(str(exc))
    if any("=" not in kv for kv in opts.env):
        ap.error("--env takes NAME=VALUE")
    names = [d.name for d in disks]
    if len(set(names)) != len(names):
        ap.error("disk names must be unique")
    cmd = opts.cmd if opts.cmd is not None else selftests_cmd(opts.selftests.split())
    vm = VM(disks, driver=opts.driver, module=opts.module,
            modparams=" ".join(opts.module_param), cmd=cmd,
            timeout=opts.timeout, qemu=opts.qemu, machine=opts.machine, smp=opts.smp,
            mem=opts.mem, append=opts.append, qemu_args=opts.qemu_arg,
            udev=not opts.no_udev, files=opts.file,
            env=dict(kv.split("=", 1) for kv in opts.env if "=" in kv))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        return vm.run()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"# vmrun: error: {exc}", flush=True)
        return 1

