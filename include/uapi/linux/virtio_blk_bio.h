/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * VIRTIO_BLK_F_BIO and the configuration space fields it brings: the
 * single definition shared by the guest driver, the selftests and the
 * bench.  Until they are in the virtio specification and in
 * <linux/virtio_blk.h>, this header is where they live.
 *
 * A device that offers VIRTIO_BLK_F_BIO reports what kind of medium stores
 * its data: whether it rotates (rotation_rate) and how long a small read
 * typically takes (read_latency_hint).  Either can read 0, "not reported",
 * and the device may change both at any time, sending a configuration
 * change notification when it does.
 */
#ifndef _UAPI_LINUX_VIRTIO_BLK_BIO_H
#define _UAPI_LINUX_VIRTIO_BLK_BIO_H

#include <linux/types.h>
#include <linux/virtio_types.h>

#define VIRTIO_BLK_F_BIO	20	/* device reports its storage medium */

/*
 * Layout of the configuration space with VIRTIO_BLK_F_BIO: the fields
 * follow struct virtio_blk_config, whose last member (zoned) ends at
 * byte 96.
 */
#define VIRTIO_BLK_CFG_MEDIUM_OFFSET	96

struct virtio_blk_medium_config {
	/* Offset 96: the encoding of SCSI's MEDIUM ROTATION RATE */
	__virtio16 rotation_rate;
	/* Offset 98: padding, 0 */
	__u8 unused3[2];
	/* Offset 100: typical latency of a small read in us, 0 unknown */
	__virtio32 read_latency_hint;
};

/* rotation_rate values; 0x0002-0x0400 and 0xffff are reserved */
#define VIRTIO_BLK_ROTATION_NOT_REPORTED	0x0000
#define VIRTIO_BLK_ROTATION_NONE		0x0001
#define VIRTIO_BLK_ROTATION_MIN_RPM		0x0401
#define VIRTIO_BLK_ROTATION_MAX_RPM		0xfffe

/* read_latency_hint when the device does not report it */
#define VIRTIO_BLK_LATENCY_NOT_REPORTED		0

#endif /* _UAPI_LINUX_VIRTIO_BLK_BIO_H */
