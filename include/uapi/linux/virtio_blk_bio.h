/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * VIRTIO_BLK_F_BIO: the single definition shared by the guest driver, the
 * selftests and the bench.  Until the bit is in the virtio specification
 * and in <linux/virtio_blk.h>, this header is where it lives.
 *
 * A device offers VIRTIO_BLK_F_BIO when its backing storage gains nothing
 * from the driver merging or reordering requests: it is non-rotational and
 * its per-request latency is low.  The driver may then submit each I/O to
 * the virtqueue as it arrives instead of queueing it for a scheduler.
 */
#ifndef _UAPI_LINUX_VIRTIO_BLK_BIO_H
#define _UAPI_LINUX_VIRTIO_BLK_BIO_H

#define VIRTIO_BLK_F_BIO	20	/* storage is fast: submit I/O unqueued */

#endif /* _UAPI_LINUX_VIRTIO_BLK_BIO_H */
