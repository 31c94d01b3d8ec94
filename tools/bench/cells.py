# SPDX-License-Identifier: GPL-2.0
"""What the benchmark measures: device classes, workloads, queue depths,
driver variants, and the cell (one combination of class, workload and
depth).  Shared by measure.py, analyse.py and report.py; no guest here."""

BS = 4096

# Device classes: vmrun disk class and options.
#   ram   raw file on the host's tmpfs
#   fast  host loop device, queue/rotational = 0, backed by the page cache
#         (both written in full first: no read of a hole, no write that
#         allocates, whichever cell runs first)
#   slow  2 ms per request, one queue of 4 entries: requests wait in the
#         guest, where the request path can merge them
CLASSES = {
    "ram": "ram:size=256M,fill=1",
    "fast": "loop-nonrot:size=256M,fill=1",
    "slow": "null:size=1G,latency-ns=2000000,dev.num-queues=1,dev.queue-size=4",
}
# How the results page names each class.
CLASS_TEXT = {
    "ram": "ram, a raw file on the host's tmpfs",
    "fast": "fast, a host loop device that is not rotational",
    "slow": "slow, QEMU null-co taking 2 ms per request behind one 4-entry virtqueue",
}
WORKLOADS = {"seq-read": "read", "seq-write": "write",
             "rnd-read": "randread", "rnd-write": "randwrite"}
DEPTHS = (1, 16)
# Driver variants: vmrun driver and virtio_blk module parameters.
DRIVERS = {
    "stock": ("stock", ""),
    "request": ("ours", "io_path=request"),
    "bio": ("ours", "io_path=bio"),
    "auto": ("ours", "io_path=auto"),
}


class Cell:
    """One measured combination: device class, workload, queue depth."""

    def __init__(self, cls, workload, depth):
        self.cls, self.workload, self.depth = cls, workload, int(depth)
        self.id = f"{cls}-{workload}-qd{self.depth}"
        self.label = f"{cls} {workload} 4k QD{self.depth}"
        self.is_read = WORKLOADS[workload].endswith("read")

    def fio_args(self, runtime=None, ios=None):
        """fio options: time-based for @runtime seconds, or exactly @ios
        I/Os (wrapping around the disk as often as needed)."""
        args = (f"--rw={WORKLOADS[self.workload]} --bs={BS} --ioengine=libaio "
                f"--direct=1 --iodepth={self.depth}")
        if ios:
            return args + f" --number_ios={ios} --io_size={ios * BS}"
        return args + f" --time_based --runtime={runtime}"
