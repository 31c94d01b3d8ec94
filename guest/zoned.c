// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host-managed zoned devices (VIRTIO_BLK_F_ZONED), as the in-tree driver
 * supports them: zone limits, and zone reports for the block layer.
 *
 * A zoned device always gets the plain shape on the request path: zone
 * write plugging, zone append emulation checks and zone resource
 * accounting all live in blk-mq, and the bio path would bypass them.  Its
 * zone operations are ordinary requests (mq.c); only the report, which
 * the block layer asks the driver for directly, is here.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/log2.h>
#include <linux/vmalloc.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "virtio_blk.h"

/**
 * virtblk_read_zoned_limits - zone limits of a host-managed zoned device
 * @vblk: the device, with @vblk->zoned set
 * @lim: limits read so far from the rest of the configuration
 *
 * Sets @vblk->zone_sectors.  As in-tree, the write granularity is also the
 * physical block size and the minimum I/O, and discard is dropped: the
 * virtio zoned model has no discard.
 *
 * Return: 0, or -ENODEV for a configuration the block layer cannot drive.
 */
int virtblk_read_zoned_limits(struct virtio_blk *vblk,
			      struct queue_limits *lim)
{
	struct virtio_device *vdev = vblk->vdev;
	u32 zone_sectors, append, wg, v;

	lim->features |= BLK_FEAT_ZONED;

	virtio_cread(vdev, struct virtio_blk_config, zoned.max_open_zones, &v);
	lim->max_open_zones = v;
	virtio_cread(vdev, struct virtio_blk_config, zoned.max_active_zones,
		     &v);
	lim->max_active_zones = v;

	virtio_cread(vdev, struct virtio_blk_config, zoned.write_granularity,
		     &wg);
	if (!wg) {
		dev_err(&vdev->dev, "zoned device with zero write granularity\n");
		return -ENODEV;
	}
	lim->zone_write_granularity = wg;
	lim->physical_block_size = wg;
	lim->io_min = wg;

	/*
	 * The specification allows any zone size; the block layer needs a
	 * power of two (chunk_sectors, zone number by shift).
	 */
	virtio_cread(vdev, struct virtio_blk_config, zoned.zone_sectors,
		     &zone_sectors);
	if (!zone_sectors || !is_power_of_2(zone_sectors)) {
		dev_err(&vdev->dev,
			"zoned device with zone size %u: not a power of two\n",
			zone_sectors);
		return -ENODEV;
	}
	vblk->zone_sectors = zone_sectors;
	lim->chunk_sectors = zone_sectors;

	if (lim->max_hw_discard_sectors) {
		dev_warn(&vdev->dev,
			 "ignoring VIRTIO_BLK_F_DISCARD of a zoned device\n");
		lim->max_hw_discard_sectors = 0;
	}

	virtio_cread(vdev, struct virtio_blk_config, zoned.max_append_sectors,
		     &append);
	if (!append || (u64)append << SECTOR_SHIFT < wg) {
		dev_err(&vdev->dev,
			"zoned device with max_append_sectors %u below the write granularity %u\n",
			append, wg);
		return -ENODEV;
	}
	lim->max_zone_append_sectors = append;

	dev_dbg(&vdev->dev,
		"zones of %u sectors, %u open, %u active, append %u, granularity %u\n",
		zone_sectors, lim->max_open_zones, lim->max_active_zones,
		append, wg);
	return 0;
}

/*
 * A report buffer for up to @nr_zones zones, sized as the in-tree driver
 * sizes it: no more zones than the disk has, no larger than one request
 * can carry (a vmalloc buffer maps one segment per page), and halved
 * until the allocation succeeds.  The block layer asks for every zone at
 * once (blk_revalidate_disk_zones()): the report is then done in chunks.
 */
static void *virtblk_alloc_report(struct virtio_blk *vblk,
				  unsigned int nr_zones, size_t *len)
{
	struct request_queue *q = vblk->mq_disk->queue;
	sector_t capacity = get_capacity(vblk->mq_disk);
	u64 zones = DIV_ROUND_UP_ULL(capacity, vblk->zone_sectors);
	size_t size;
	void *buf;

	nr_zones = min_t(u64, nr_zones, zones);
	size = struct_size_t(struct virtio_blk_zone_report, zones, nr_zones);
	size = min_t(size_t, size,
		     (size_t)queue_max_hw_sectors(q) << SECTOR_SHIFT);
	size = min_t(size_t, size, (size_t)queue_max_segments(q) << PAGE_SHIFT);

	for (; size >= struct_size_t(struct virtio_blk_zone_report, zones, 1);
	     size >>= 1) {
		buf = __vmalloc(size, GFP_KERNEL | __GFP_NORETRY);
		if (buf) {
			*len = size;
			return buf;
		}
	}
	return NULL;
}

/* A zone descriptor from the device as the block layer describes zones */
static int virtblk_parse_zone(struct virtio_blk *vblk,
			      const struct virtio_blk_zone_descriptor *desc,
			      struct blk_zone *zone)
{
	struct virtio_device *vdev = vblk->vdev;
	sector_t capacity = get_capacity(vblk->mq_disk);

	memset(zone, 0, sizeof(*zone));
	zone->start = virtio64_to_cpu(vdev, desc->z_start);
	/* The last zone may be smaller: the disk ends there. */
	zone->len = min_t(u64, vblk->zone_sectors,
			  capacity > zone->start ? capacity - zone->start : 0);
	zone->capacity = virtio64_to_cpu(vdev, desc->z_cap);
	zone->wp = virtio64_to_cpu(vdev, desc->z_wp);

	switch (desc->z_type) {
	case VIRTIO_BLK_ZT_SWR:
		zone->type = BLK_ZONE_TYPE_SEQWRITE_REQ;
		break;
	case VIRTIO_BLK_ZT_SWP:
		zone->type = BLK_ZONE_TYPE_SEQWRITE_PREF;
		break;
	case VIRTIO_BLK_ZT_CONV:
		zone->type = BLK_ZONE_TYPE_CONVENTIONAL;
		break;
	default:
		dev_err(&vdev->dev, "zone %llu: unknown type %#x\n",
			zone->start, desc->z_type);
		return -EIO;
	}

	/* Zones without a write pointer report none (all ones). */
	switch (desc->z_state) {
	case VIRTIO_BLK_ZS_EMPTY:
		zone->cond = BLK_ZONE_COND_EMPTY;
		break;
	case VIRTIO_BLK_ZS_IOPEN:
		zone->cond = BLK_ZONE_COND_IMP_OPEN;
		break;
	case VIRTIO_BLK_ZS_EOPEN:
		zone->cond = BLK_ZONE_COND_EXP_OPEN;
		break;
	case VIRTIO_BLK_ZS_CLOSED:
		zone->cond = BLK_ZONE_COND_CLOSED;
		break;
	case VIRTIO_BLK_ZS_FULL:
		zone->cond = BLK_ZONE_COND_FULL;
		zone->wp = zone->start + zone->len;
		break;
	case VIRTIO_BLK_ZS_NOT_WP:
		zone->cond = BLK_ZONE_COND_NOT_WP;
		break;
	case VIRTIO_BLK_ZS_RDONLY:
		zone->cond = BLK_ZONE_COND_READONLY;
		zone->wp = ULONG_MAX;
		break;
	case VIRTIO_BLK_ZS_OFFLINE:
		zone->cond = BLK_ZONE_COND_OFFLINE;
		zone->wp = ULONG_MAX;
		break;
	default:
		dev_err(&vdev->dev, "zone %llu: unknown state %#x\n",
			zone->start, desc->z_state);
		return -EIO;
	}
	return 0;
}

/**
 * virtblk_report_zones - ->report_zones of the plain disk
 * @disk: the plain disk of a zoned device
 * @sector: report the zones from the one holding this sector on
 * @nr_zones: at most this many
 * @cb: called for each zone; it checks the zone's consistency
 * @data: for @cb
 *
 * Holds @vdev_mutex throughout, so that the device cannot be removed
 * while a report is in flight.
 *
 * Return: the number of zones reported, or a negative errno.
 */
int virtblk_report_zones(struct gendisk *disk, sector_t sector,
			 unsigned int nr_zones, report_zones_cb cb, void *data)
{
	struct virtio_blk *vblk = disk->private_data;
	struct virtio_blk_zone_report *report;
	unsigned int idx = 0;
	size_t len, fit;
	int ret = 0;

	if (WARN_ON_ONCE(!vblk->zone_sectors))
		return -EOPNOTSUPP;

	report = virtblk_alloc_report(vblk, nr_zones, &len);
	if (!report)
		return -ENOMEM;
	fit = (len - sizeof(*report)) / sizeof(report->zones[0]);

	mutex_lock(&vblk->vdev_mutex);
	if (!vblk->vdev) {
		ret = -ENXIO;
		goto out_unlock;
	}

	while (idx < nr_zones && sector < get_capacity(disk)) {
		u64 nz, i;

		memset(report, 0, len);
		ret = virtblk_drv_in(vblk, VIRTIO_BLK_T_ZONE_REPORT, sector,
				     report, len);
		if (ret)
			goto out_unlock;

		/* Never trust the count beyond what the buffer holds. */
		nz = min_t(u64, virtio64_to_cpu(vblk->vdev, report->nr_zones),
			   fit);
		if (!nz)
			break;

		for (i = 0; i < nz && idx < nr_zones; i++) {
			struct blk_zone zone;

			ret = virtblk_parse_zone(vblk, &report->zones[i], &zone);
			if (!ret)
				ret = cb(&zone, idx, data);
			if (ret)
				goto out_unlock;
			/* A device going backwards would loop forever. */
			if (zone.start + vblk->zone_sectors <= sector) {
				dev_err(&vblk->vdev->dev,
					"zone report from %llu went back to %llu\n",
					(u64)sector, zone.start);
				ret = -EIO;
				goto out_unlock;
			}
			sector = zone.start + vblk->zone_sectors;
			idx++;
		}
	}
	ret = idx ? idx : -EINVAL;
out_unlock:
	mutex_unlock(&vblk->vdev_mutex);
	kvfree(report);
	return ret;
}
