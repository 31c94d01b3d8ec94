# SPDX-License-Identifier: GPL-2.0
"""make demo: boot one guest with a disk of each class and print, per disk,
what the host decided (its probe and whether it offers VIRTIO_BLK_F_BIO),
whether the guest negotiated the bit, which guest path is in use and a
short 4k random-read fio figure."""

import argparse
import os

from .disks import Disk
from .paths import TOOLS
from .vm import VM, prepare

DISKS = [
    "ram:ram",
    "file:file",
    "loopnr:loop-nonrot",
    "looprot:loop-rot",
    "part:part",
    "nullfast:null",
    "nullslow:null:latency-ns=2000000",
]


def host_view(qmp, name):
    """What the host decided for disk NAME, from QMP."""
    dev = f"/machine/peripheral/{name}"
    probe = "-"
    try:
        p = qmp.cmd("qom-get", path=dev, property="bio-probe")
        lat = (f", {p['latency-ns'] / 1000:.0f} us read latency"
               f" (threshold {p['threshold-us']} us)") if "latency-ns" in p else ""
        probe = f"bio={p['mode']}, {p['media']}{lat}: {p['reason']}"
    except RuntimeError:
        probe = "(no probe: host series not applied)"
    offered = "?"
    try:
        st = qmp.cmd("x-query-virtio-status", path=f"{dev}/virtio-backend")
        feats = st["host-features"].get("dev-features", [])
        offered = "yes" if any("VIRTIO_BLK_F_BIO" in f for f in feats) else "no"
    except (RuntimeError, KeyError):
        pass
    return offered, probe


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--driver", choices=("ours", "stock"))
    ap.add_argument("--seconds", type=int, default=3, help="fio runtime per disk")
    opts = ap.parse_args()

    driver = opts.driver or "ours"
    prepare(module=driver == "ours")
    disks = [Disk(spec) for spec in DISKS]
    demo_sh = os.path.join(TOOLS, "guest", "demo.sh")
    vm = VM(disks, driver=driver, cmd=f"DEMO_SECONDS={opts.seconds} sh /vblk/files/demo.sh",
            timeout=600, files=[demo_sh], echo=False)
    try:
        vm.start()
        host = {d.name: host_view(vm.qmp, d.name) for d in disks}
        status = vm.wait()
        vm.stop()
        healthy = vm.check_console()
    finally:
        vm.cleanup()

    print(f"guest driver: {driver} virtio_blk")
    print(f"{'disk':9} {'class':12} {'host offers':11} {'negotiated':10} "
          f"{'guest path':10} {'why':15} {'rot':3} {'4k QD16 IOPS':>12}  host probe")
    for d in disks:
        guest = next((ln.split()[2:] for ln in vm.output
                      if ln.startswith(f"DEMO {d.name} ")), [])
        g = dict(kv.split("=", 1) for kv in guest if "=" in kv)
        offered, probe = host[d.name]
        print(f"{d.name:9} {d.cls:12} {offered:11} "
              f"{'yes' if g.get('bio_negotiated') == '1' else 'no':10} "
              f"{g.get('path', '?'):10} {g.get('reason', '?'):15} {g.get('rotational', '?'):3} "
              f"{g.get('iops', '?'):>12}  {probe}")
    if status != 0 or not healthy:
        print("demo: the guest run failed:", *vm.splats, sep="\n  ")
        return 1
    return 0

