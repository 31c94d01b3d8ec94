// SPDX-License-Identifier: GPL-2.0-only
/*
 * Adaptive virtio block driver: probe, removal, configuration changes,
 * suspend, feature negotiation and queue limits.
 *
 * A device that starts on the request path gets a plain blk-mq disk
 * (vdX), as the in-tree driver makes it.  One that starts on the bio path
 * gets the bio-capable shape: a visible bio-based disk (vdX) that either
 * drives the virtqueues itself (bio path) or remaps its bios to a hidden
 * blk-mq disk (request path).  A plain disk nobody holds open can be
 * re-created bio-capable (virtblk_reshape()).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/cpuhotplug.h>
#include <linux/hdreg.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/string_helpers.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <uapi/linux/virtio_blk_bio.h>

#include "virtio_blk.h"

#define VIRTBLK_PART_BITS	4
#define VIRTBLK_MAX_DISCARD_SEGMENTS	256u
/* Scatterlist entries that can ever fit into a virtqueue */
#define VIRTBLK_MAX_SG_ELEMS	32768u
/* Largest physical block exponent taken from the device */
#define VIRTBLK_MAX_PHYS_EXP	16
/* Descriptors of the smallest request: header, one data buffer, status */
#define VIRTBLK_MIN_CHAIN	3u

static unsigned int num_request_queues;
module_param(num_request_queues, uint, 0644);
MODULE_PARM_DESC(num_request_queues,
		 "Limit the number of request queues to use for blk device. 0 for no limit. Values > nr_cpu_ids truncated to nr_cpu_ids.");

static unsigned int poll_queues;
module_param(poll_queues, uint, 0644);
MODULE_PARM_DESC(poll_queues, "The number of dedicated virtqueues for polling I/O (request path)");

static unsigned int virtblk_queue_depth;
module_param_named(queue_depth, virtblk_queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth, "Tags per request queue. 0 for what fills the ring.");

int virtblk_io_path_param = VIRTBLK_POLICY_AUTO;

static int virtblk_io_path_set(const char *val, const struct kernel_param *kp)
{
	int policy = virtblk_parse_policy(val);

	if (policy < 0)
		return policy;
	WRITE_ONCE(*(int *)kp->arg, policy);
	return 0;
}

static int virtblk_io_path_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n",
			  virtblk_policy_name(READ_ONCE(*(int *)kp->arg)));
}

static const struct kernel_param_ops virtblk_io_path_ops = {
	.set	= virtblk_io_path_set,
	.get	= virtblk_io_path_get,
};
module_param_cb(io_path, &virtblk_io_path_ops, &virtblk_io_path_param, 0644);
MODULE_PARM_DESC(io_path,
		 "I/O path of new devices: auto (bio for a non-rotating medium with a low or unreported read latency), bio or request");

/*
 * The read_latency_hint (us) at or under which auto takes the bio path:
 * see "Choosing a path" in Documentation/block/virtio_blk-adaptive.rst
 * for the measurements behind the default.
 */
unsigned int virtblk_bio_latency_us = 200;
module_param_named(bio_latency_us, virtblk_bio_latency_us, uint, 0644);
MODULE_PARM_DESC(bio_latency_us,
		 "auto: highest read_latency_hint (us) of a non-rotating medium that takes the bio path (default 200)");

static int major;
static enum cpuhp_state virtblk_cpuhp_state;
static DEFINE_IDA(vd_index_ida);
static struct workqueue_struct *virtblk_wq;
/* Resets may be what memory reclaim waits for: a rescuer of their own */
struct workqueue_struct *virtblk_reset_wq;
struct kmem_cache *virtblk_bio_cmd_cache;

/**
 * virtblk_get_cache_mode - whether the device caches writes
 * @vdev: the device
 *
 * Return: true for write back, false for write through.
 */
bool virtblk_get_cache_mode(struct virtio_device *vdev)
{
	u8 writeback;

	/* Without a WCE field the cache is there exactly if FLUSH is. */
	if (virtio_cread_feature(vdev, VIRTIO_BLK_F_CONFIG_WCE,
				 struct virtio_blk_config, wce, &writeback))
		writeback = virtio_has_feature(vdev, VIRTIO_BLK_F_FLUSH);

	return !!writeback;
}

/* Set or clear a queue feature with the queue frozen */
static int virtblk_set_feature(struct request_queue *q, blk_features_t feature,
			       bool on)
{
	struct queue_limits lim = queue_limits_start_update(q);

	if (on)
		lim.features |= feature;
	else
		lim.features &= ~feature;
	return queue_limits_commit_update_frozen(q, &lim);
}

/**
 * virtblk_update_cache_mode - apply the device cache mode to the disks
 * @vblk: the device
 *
 * Freezing the queues lets in-flight I/O finish under the old mode.
 * Called from the cache_type attribute: removing the disk drains it, so
 * the disks cannot change meanwhile.
 */
void virtblk_update_cache_mode(struct virtio_blk *vblk)
{
	bool writeback = virtblk_get_cache_mode(vblk->vdev);
	int err = 0;

	if (!virtblk_plain(vblk))
		err = virtblk_set_feature(vblk->mq_disk->queue,
					  BLK_FEAT_WRITE_CACHE, writeback);
	if (!err)
		err = virtblk_set_feature(vblk->disk->queue,
					  BLK_FEAT_WRITE_CACHE, writeback);
	if (err)
		dev_warn(&vblk->vdev->dev, "[%s] cannot update the write cache: %d\n",
			 vblk->disk->disk_name, err);
}

static void virtblk_update_capacity(struct virtio_blk *vblk, bool resize)
{
	struct virtio_device *vdev = vblk->vdev;
	unsigned int lbs = queue_logical_block_size(vblk->disk->queue);
	char cap_str_2[10], cap_str_10[10];
	u64 capacity, nblocks;

	/* Always in 512-byte sectors, whatever the block size. */
	virtio_cread(vdev, struct virtio_blk_config, capacity, &capacity);
	nblocks = DIV_ROUND_UP_ULL(capacity, lbs >> SECTOR_SHIFT);

	string_get_size(nblocks, lbs, STRING_UNITS_2, cap_str_2,
			sizeof(cap_str_2));
	string_get_size(nblocks, lbs, STRING_UNITS_10, cap_str_10,
			sizeof(cap_str_10));
	dev_notice(&vdev->dev, "[%s] %s%llu %u-byte logical blocks (%s/%s)\n",
		   vblk->disk->disk_name, resize ? "new size: " : "", nblocks,
		   lbs, cap_str_10, cap_str_2);

	/* The hidden disk must accept everything the visible one passes on. */
	if (virtblk_plain(vblk)) {
		set_capacity_and_notify(vblk->disk, capacity);
	} else if (capacity >= get_capacity(vblk->mq_disk)) {
		set_capacity(vblk->mq_disk, capacity);
		set_capacity_and_notify(vblk->disk, capacity);
	} else {
		set_capacity_and_notify(vblk->disk, capacity);
		set_capacity(vblk->mq_disk, capacity);
	}
}

/* Read rotation_rate and read_latency_hint, both from one generation */
static void virtblk_read_medium(struct virtio_blk *vblk)
{
	struct virtio_blk_medium_config m;

	BUILD_BUG_ON(sizeof(struct virtio_blk_config) !=
		     VIRTIO_BLK_CFG_MEDIUM_OFFSET);
	BUILD_BUG_ON(offsetof(struct virtio_blk_medium_config,
			      read_latency_hint) != 4);

	if (!vblk->medium)
		return;
	virtio_cread_bytes(vblk->vdev, VIRTIO_BLK_CFG_MEDIUM_OFFSET, &m,
			   sizeof(m));
	WRITE_ONCE(vblk->rotation_rate,
		   virtio16_to_cpu(vblk->vdev, m.rotation_rate));
	WRITE_ONCE(vblk->read_latency_hint,
		   virtio32_to_cpu(vblk->vdev, m.read_latency_hint));
}

/*
 * Whether the disks are rotational: as NVMe follows its rotational bit,
 * except that a device that does not tell (no VIRTIO_BLK_F_BIO, or
 * rotation_rate not reported) is rotational, as under the in-tree driver.
 */
static bool virtblk_rotational(struct virtio_blk *vblk)
{
	return !vblk->medium ||
	       vblk->rotation_rate != VIRTIO_BLK_ROTATION_NONE;
}

/*
 * The medium changed: the rotational flag of both disks follows it, and
 * so does the path when auto chose it.  With @path_lock held and the
 * disks live.
 */
static void virtblk_update_medium(struct virtio_blk *vblk)
{
	struct device *dev = &vblk->vdev->dev;
	const char *name = vblk->disk->disk_name;
	bool was_rotational = virtblk_rotational(vblk);
	u16 rotation_rate = vblk->rotation_rate;
	u32 latency = vblk->read_latency_hint;
	char why[VIRTBLK_REASON_LEN];
	int old = vblk->path, err = 0;

	virtblk_read_medium(vblk);
	if (vblk->rotation_rate == rotation_rate &&
	    vblk->read_latency_hint == latency)
		return;
	dev_dbg(dev, "[%s] rotation_rate %u, read_latency_hint %u us\n", name,
		vblk->rotation_rate, vblk->read_latency_hint);

	if (virtblk_rotational(vblk) != was_rotational) {
		bool rotational = !was_rotational;

		if (!virtblk_plain(vblk))
			err = virtblk_set_feature(vblk->mq_disk->queue,
						  BLK_FEAT_ROTATIONAL,
						  rotational);
		if (!err)
			err = virtblk_set_feature(vblk->disk->queue,
						  BLK_FEAT_ROTATIONAL,
						  rotational);
		if (err)
			dev_warn(dev, "[%s] cannot update the rotational flag: %d\n",
				 name, err);
	}

	/* A path the user or the module parameter chose stays. */
	if (vblk->policy != VIRTBLK_POLICY_AUTO || vblk->zoned)
		return;

	if (!virtblk_plain(vblk)) {
		virtblk_select_path(vblk, VIRTBLK_POLICY_AUTO, false);
		if (vblk->path != old)
			dev_info(dev, "[%s] auto: %s path -> %s path (%s)\n",
				 name, virtblk_path_name(old),
				 virtblk_path_name(vblk->path), vblk->why);
		return;
	}

	/* A plain disk stays one: only a new disk can be bio-based. */
	if (virtblk_medium_path(true, vblk->rotation_rate,
				vblk->read_latency_hint, why,
				sizeof(why)) == VIRTBLK_PATH_BIO) {
		if (!vblk->rebind_noted)
			dev_info(dev, "[%s] auto now asks for the bio path (%s): a plain blk-mq disk takes it when the device is bound again\n",
				 name, why);
		vblk->rebind_noted = true;
		strlcat(why, ", bio path on rebind (plain blk-mq disk)",
			sizeof(why));
	}
	virtblk_set_why(vblk, why);
}

static void virtblk_config_changed_work(struct work_struct *work)
{
	struct virtio_blk *vblk = container_of(work, struct virtio_blk,
					       config_work);

	/* The disks are being re-created or are gone: nothing to update. */
	mutex_lock(&vblk->path_lock);
	if (vblk->disk) {
		virtblk_update_capacity(vblk, true);
		virtblk_update_medium(vblk);
	}
	mutex_unlock(&vblk->path_lock);
}

static void virtblk_config_changed(struct virtio_device *vdev)
{
	struct virtio_blk *vblk = vdev->priv;

	queue_work(virtblk_wq, &vblk->config_work);
}

/* Decide how many queues of each type; the counts survive suspend. */
static int virtblk_alloc_vqs(struct virtio_blk *vblk)
{
	struct virtio_device *vdev = vblk->vdev;
	unsigned int num_vqs, num_poll_vqs, i;
	u16 num_queues;

	if (virtio_cread_feature(vdev, VIRTIO_BLK_F_MQ,
				 struct virtio_blk_config, num_queues,
				 &num_queues)) {
		num_queues = 1;
	} else if (!num_queues) {
		dev_warn(&vdev->dev, "device reports 0 queues, using 1\n");
		num_queues = 1;
	}

	num_vqs = min_t(unsigned int,
			min_not_zero(num_request_queues, nr_cpu_ids),
			num_queues);
	num_poll_vqs = min_t(unsigned int, poll_queues, num_vqs - 1);

	vblk->io_queues[HCTX_TYPE_DEFAULT] = num_vqs - num_poll_vqs;
	vblk->io_queues[HCTX_TYPE_READ] = 0;
	vblk->io_queues[HCTX_TYPE_POLL] = num_poll_vqs;
	dev_dbg(&vdev->dev, "%u/%u/%u default/read/poll queues of %u offered\n",
		vblk->io_queues[HCTX_TYPE_DEFAULT],
		vblk->io_queues[HCTX_TYPE_READ],
		vblk->io_queues[HCTX_TYPE_POLL], num_queues);

	vblk->vqs = kcalloc(num_vqs, sizeof(*vblk->vqs), GFP_KERNEL);
	if (!vblk->vqs)
		return -ENOMEM;

	for (i = 0; i < num_vqs; i++) {
		struct virtblk_vq *bvq = &vblk->vqs[i];

		spin_lock_init(&bvq->lock);
		INIT_LIST_HEAD(&bvq->parked);
		INIT_LIST_HEAD(&bvq->bio_on_ring);
		bvq->vblk = vblk;
		if (i < vblk->io_queues[HCTX_TYPE_DEFAULT])
			snprintf(bvq->name, sizeof(bvq->name), "req.%u", i);
		else
			snprintf(bvq->name, sizeof(bvq->name), "req_poll.%u", i);
	}
	vblk->num_vqs = num_vqs;
	return 0;
}

static int virtblk_find_vqs(struct virtio_blk *vblk)
{
	struct virtio_device *vdev = vblk->vdev;
	struct virtqueue_info *vqs_info;
	struct irq_affinity desc = { 0, };
	struct virtqueue **vqs;
	unsigned int i;
	int err = -ENOMEM;

	vqs_info = kcalloc(vblk->num_vqs, sizeof(*vqs_info), GFP_KERNEL);
	vqs = kcalloc(vblk->num_vqs, sizeof(*vqs), GFP_KERNEL);
	if (!vqs_info || !vqs)
		goto out_free;

	for (i = 0; i < vblk->num_vqs; i++) {
		vqs_info[i].name = vblk->vqs[i].name;
		/* Poll queues are reaped by ->poll only. */
		if (i < vblk->io_queues[HCTX_TYPE_DEFAULT])
			vqs_info[i].callback = virtblk_done;
	}

	err = virtio_find_vqs(vdev, vblk->num_vqs, vqs, vqs_info, &desc);
	if (err)
		goto out_free;

	/* A context stopped on a held-back request is restarted by reaping. */
	for (i = 0; i < vblk->num_vqs; i++)
		vblk->vqs[i].vq = vqs[i];

out_free:
	kfree(vqs);
	kfree(vqs_info);
	return err;
}

/* Legacy vdX naming: vda..vdz, vdaa..vdzz, ... */
static int virtblk_name_format(const char *prefix, int index, char *buf,
			       int buflen)
{
	const int base = 'z' - 'a' + 1;
	char *begin = buf + strlen(prefix);
	char *end = buf + buflen;
	char *p = end - 1;

	*p = '\0';
	do {
		if (p == begin)
			return -EINVAL;
		*--p = 'a' + (index % base);
		index = (index / base) - 1;
	} while (index >= 0);

	memmove(begin, p, end - p);
	memcpy(buf, prefix, strlen(prefix));
	return 0;
}

static int virtblk_read_sg_elems(struct virtio_blk *vblk)
{
	struct virtio_device *vdev = vblk->vdev;
	unsigned int ring = UINT_MAX, limit, i;
	u32 sg_elems;

	/*
	 * A chain, indirect or not, holds at most the ring size: a ring too
	 * small for the smallest request would stall the first one forever.
	 */
	for (i = 0; i < vblk->num_vqs; i++)
		ring = min(ring, virtqueue_get_vring_size(vblk->vqs[i].vq));
	if (ring < VIRTBLK_MIN_CHAIN) {
		dev_err(&vdev->dev,
			"virtqueue of %u entries cannot hold a request of %u descriptors\n",
			ring, VIRTBLK_MIN_CHAIN);
		return -EINVAL;
	}

	if (virtio_cread_feature(vdev, VIRTIO_BLK_F_SEG_MAX,
				 struct virtio_blk_config, seg_max, &sg_elems)) {
		sg_elems = 1;
	} else if (!sg_elems) {
		dev_warn(&vdev->dev, "device reports seg_max 0, using 1\n");
		sg_elems = 1;
	}

	limit = min(VIRTBLK_MAX_SG_ELEMS, ring - 2);
	if (sg_elems > limit) {
		dev_warn(&vdev->dev,
			 "seg_max %u exceeds what a ring of %u can carry, using %u\n",
			 sg_elems, ring, limit);
		sg_elems = limit;
	}
	vblk->sg_elems = sg_elems;
	return 0;
}

static int virtblk_read_limits(struct virtio_blk *vblk,
			       struct queue_limits *lim)
{
	struct virtio_device *vdev = vblk->vdev;
	u32 v, max_size, blk_size, opt_io_size;
	u32 max_discard_segs = 0;
	u32 discard_granularity = 0;
	u8 physical_block_exp, alignment_offset;
	u16 min_io_size;
	size_t max_dma_size;
	u64 opt;

	if (virtblk_rotational(vblk))
		lim->features |= BLK_FEAT_ROTATIONAL;
	if (virtblk_get_cache_mode(vdev))
		lim->features |= BLK_FEAT_WRITE_CACHE;

	lim->max_segments = vblk->sg_elems;
	lim->max_hw_sectors = UINT_MAX;

	max_dma_size = virtio_max_dma_size(vdev);
	max_size = max_dma_size > U32_MAX ? U32_MAX : max_dma_size;
	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_SIZE_MAX,
				  struct virtio_blk_config, size_max, &v))
		max_size = min(max_size, v);
	if (max_size < PAGE_SIZE) {
		dev_warn(&vdev->dev,
			 "segment size limit %u below page size, using %lu\n",
			 max_size, PAGE_SIZE);
		max_size = PAGE_SIZE;
	}
	lim->max_segment_size = max_size;

	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_BLK_SIZE,
				  struct virtio_blk_config, blk_size,
				  &blk_size)) {
		if (blk_validate_block_size(blk_size)) {
			dev_err(&vdev->dev,
				"unsupported block size %u (must be a power of two from 512 to %lu)\n",
				blk_size, PAGE_SIZE);
			return -EINVAL;
		}
	} else {
		blk_size = SECTOR_SIZE;
	}
	lim->logical_block_size = blk_size;

	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_TOPOLOGY,
				  struct virtio_blk_config, physical_block_exp,
				  &physical_block_exp) && physical_block_exp) {
		if (physical_block_exp > VIRTBLK_MAX_PHYS_EXP)
			dev_warn(&vdev->dev,
				 "ignoring physical_block_exp %u\n",
				 physical_block_exp);
		else
			lim->physical_block_size =
				blk_size << physical_block_exp;
	}

	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_TOPOLOGY,
				  struct virtio_blk_config, alignment_offset,
				  &alignment_offset) && alignment_offset)
		lim->alignment_offset = blk_size * alignment_offset;

	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_TOPOLOGY,
				  struct virtio_blk_config, min_io_size,
				  &min_io_size) && min_io_size)
		lim->io_min = blk_size * min_io_size;

	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_TOPOLOGY,
				  struct virtio_blk_config, opt_io_size,
				  &opt_io_size) && opt_io_size) {
		opt = (u64)blk_size * opt_io_size;
		if (opt > UINT_MAX)
			dev_warn(&vdev->dev, "ignoring opt_io_size %u\n",
				 opt_io_size);
		else
			lim->io_opt = opt;
	}

	if (virtio_has_feature(vdev, VIRTIO_BLK_F_DISCARD)) {
		virtio_cread(vdev, struct virtio_blk_config,
			     discard_sector_alignment, &discard_granularity);
		virtio_cread(vdev, struct virtio_blk_config,
			     max_discard_sectors, &v);
		lim->max_hw_discard_sectors = v ? v : UINT_MAX;
		virtio_cread(vdev, struct virtio_blk_config, max_discard_seg,
			     &max_discard_segs);
	}

	if (virtio_has_feature(vdev, VIRTIO_BLK_F_WRITE_ZEROES)) {
		virtio_cread(vdev, struct virtio_blk_config,
			     max_write_zeroes_sectors, &v);
		lim->max_write_zeroes_sectors = v ? v : UINT_MAX;
	}

	/*
	 * The block layer has one segment count and one granularity for
	 * discard and secure erase: take the stricter of the two.
	 */
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_SECURE_ERASE)) {
		u32 align, sectors, segs;

		virtio_cread(vdev, struct virtio_blk_config,
			     secure_erase_sector_alignment, &align);
		virtio_cread(vdev, struct virtio_blk_config,
			     max_secure_erase_sectors, &sectors);
		virtio_cread(vdev, struct virtio_blk_config,
			     max_secure_erase_seg, &segs);
		if (!align || !sectors || !segs) {
			dev_warn(&vdev->dev,
				 "secure erase disabled: zero alignment (%u), sectors (%u) or segments (%u)\n",
				 align, sectors, segs);
		} else {
			discard_granularity = min_not_zero(discard_granularity,
							   align);
			lim->max_secure_erase_sectors = sectors;
			max_discard_segs = min_not_zero(max_discard_segs, segs);
		}
	}

	if (lim->max_hw_discard_sectors || lim->max_secure_erase_sectors) {
		if (!max_discard_segs)
			max_discard_segs = vblk->sg_elems;
		lim->max_discard_segments = min(max_discard_segs,
						VIRTBLK_MAX_DISCARD_SEGMENTS);
		if (discard_granularity &&
		    discard_granularity <= UINT_MAX >> SECTOR_SHIFT)
			lim->discard_granularity =
				discard_granularity << SECTOR_SHIFT;
		else
			lim->discard_granularity = blk_size;
	}

	/* Last: the zone limits override discard and the block sizes. */
	if (vblk->zoned)
		return virtblk_read_zoned_limits(vblk, lim);
	return 0;
}

/*
 * The zone model of the device.  A host-managed device is zoned for the
 * block layer; a host-aware one accepts any write, and is driven as a
 * regular disk, as the in-tree driver drives it.
 */
static int virtblk_probe_zoned(struct virtio_blk *vblk)
{
	struct virtio_device *vdev = vblk->vdev;
	u8 model;

	if (!virtio_has_feature(vdev, VIRTIO_BLK_F_ZONED))
		return 0;

	virtio_cread(vdev, struct virtio_blk_config, zoned.model, &model);
	switch (model) {
	case VIRTIO_BLK_Z_NONE:
	case VIRTIO_BLK_Z_HA:
		return 0;
	case VIRTIO_BLK_Z_HM:
		vblk->zoned = true;
		return 0;
	default:
		dev_err(&vdev->dev, "unsupported zone model %u\n", model);
		return -EINVAL;
	}
}

static void virtblk_release(struct kref *ref)
{
	struct virtio_blk *vblk = container_of(ref, struct virtio_blk, ref);

	ida_free(&vd_index_ida, vblk->index);
	mutex_destroy(&vblk->vdev_mutex);
	mutex_destroy(&vblk->path_lock);
	kfree(vblk->vqs);
	kfree(vblk);
}

/* The last put of a registered visible disk, which may outlive removal */
static void virtblk_free_disk(struct gendisk *disk)
{
	struct virtio_blk *vblk = disk->private_data;

	kref_put(&vblk->ref, virtblk_release);
}

/*
 * Opening a plain disk that is being re-created bio-capable would find it
 * gone the next moment: refuse.  Called under the disk's open_mutex.
 */
static int virtblk_open(struct gendisk *disk, blk_mode_t mode)
{
	struct virtio_blk *vblk = disk->private_data;

	return vblk->reshaping ? -EBUSY : 0;
}

/* Only old bootloaders and partitioning tools still ask for this. */
static int virtblk_getgeo(struct block_device *bd, struct hd_geometry *geo)
{
	struct virtio_blk *vblk = bd->bd_disk->private_data;
	int ret = 0;

	mutex_lock(&vblk->vdev_mutex);
	if (!vblk->vdev) {
		ret = -ENXIO;
		goto out_unlock;
	}

	if (virtio_has_feature(vblk->vdev, VIRTIO_BLK_F_GEOMETRY)) {
		virtio_cread(vblk->vdev, struct virtio_blk_config,
			     geometry.cylinders, &geo->cylinders);
		virtio_cread(vblk->vdev, struct virtio_blk_config,
			     geometry.heads, &geo->heads);
		virtio_cread(vblk->vdev, struct virtio_blk_config,
			     geometry.sectors, &geo->sectors);
	} else {
		geo->heads = 1 << 6;
		geo->sectors = 1 << 5;
		geo->cylinders = get_capacity(bd->bd_disk) >> 11;
	}
out_unlock:
	mutex_unlock(&vblk->vdev_mutex);
	return ret;
}

/* vdX of the bio-capable shape */
static const struct block_device_operations virtblk_fops = {
	.owner		= THIS_MODULE,
	.submit_bio	= virtblk_submit_bio,
	.getgeo		= virtblk_getgeo,
	.free_disk	= virtblk_free_disk,
};

/* vdX of the plain shape */
static const struct block_device_operations virtblk_plain_fops = {
	.owner		= THIS_MODULE,
	.open		= virtblk_open,
	.getgeo		= virtblk_getgeo,
	.free_disk	= virtblk_free_disk,
	.report_zones	= virtblk_report_zones,
};

/* The hidden blk-mq disk behind a bio-capable vdX */
static const struct block_device_operations virtblk_hidden_fops = {
	.owner		= THIS_MODULE,
};

/* What fills the ring, as the in-tree driver sizes its tag set */
static unsigned int virtblk_default_depth(struct virtio_blk *vblk)
{
	unsigned int depth;

	if (virtblk_queue_depth)
		return virtblk_queue_depth;

	/* Without indirect descriptors a request takes at least 2. */
	depth = vblk->vqs[0].vq->num_free;
	if (!virtio_has_feature(vblk->vdev, VIRTIO_RING_F_INDIRECT_DESC))
		depth /= 2;
	return max(depth, 1u);
}

/* One line per disk: its path, why, and its shape */
static void virtblk_announce_path(struct virtio_blk *vblk)
{
	dev_info(&vblk->vdev->dev, "[%s] %s path: %s%s\n",
		 vblk->disk->disk_name, virtblk_path_name(vblk->path),
		 vblk->why, virtblk_plain(vblk) ? ", plain blk-mq disk" : "");
}

/*
 * Allocate the disks of a shape: a plain blk-mq vdX, or a bio-based vdX
 * with the hidden blk-mq disk behind it.  Nothing is registered yet.
 */
static int virtblk_alloc_disks(struct virtio_blk *vblk, bool bio_capable)
{
	struct virtio_device *vdev = vblk->vdev;
	struct queue_limits lim = { .logical_block_size = SECTOR_SIZE };
	struct queue_limits mq_lim;
	struct gendisk *disk, *mq_disk;
	int err;

	err = virtblk_read_limits(vblk, &lim);
	if (err)
		return err;

	mq_lim = lim;
	mq_disk = blk_mq_alloc_disk(&vblk->tag_set, &mq_lim, vblk);
	if (IS_ERR(mq_disk))
		return PTR_ERR(mq_disk);

	if (!bio_capable) {
		disk = mq_disk;
		disk->fops = &virtblk_plain_fops;
	} else {
		mq_disk->fops = &virtblk_hidden_fops;
		mq_disk->flags |= GENHD_FL_HIDDEN;
		/* vdX's io_timeout is that of both paths. */
		blk_queue_rq_timeout(mq_disk->queue,
				     READ_ONCE(vblk->io_timeout));
		snprintf(mq_disk->disk_name, DISK_NAME_LEN, "virtblk%d",
			 vblk->index);

		/* Accounting happens once, on the visible disk. */
		mq_lim = queue_limits_start_update(mq_disk->queue);
		mq_lim.features &= ~BLK_FEAT_IO_STAT;
		err = queue_limits_commit_update(mq_disk->queue, &mq_lim);
		if (err)
			goto out_put_mq_disk;

		lim.features |= BLK_FEAT_IO_STAT | BLK_FEAT_NOWAIT;
		if (vblk->io_queues[HCTX_TYPE_POLL])
			lim.features |= BLK_FEAT_POLL;
		disk = blk_alloc_disk(&lim, NUMA_NO_NODE);
		if (IS_ERR(disk)) {
			err = PTR_ERR(disk);
			goto out_put_mq_disk;
		}
		disk->fops = &virtblk_fops;
	}

	virtblk_name_format("vd", vblk->index, disk->disk_name, DISK_NAME_LEN);
	disk->major = major;
	disk->first_minor = vblk->index << VIRTBLK_PART_BITS;
	disk->minors = 1 << VIRTBLK_PART_BITS;
	disk->private_data = vblk;

	if (virtio_has_feature(vdev, VIRTIO_BLK_F_RO)) {
		set_disk_ro(disk, true);
		set_disk_ro(mq_disk, true);
	}

	vblk->disk = disk;
	vblk->mq_disk = mq_disk;
	virtblk_update_capacity(vblk, false);
	return 0;

out_put_mq_disk:
	put_disk(mq_disk);
	return err;
}

/* Drop disks virtblk_alloc_disks() made and nothing registered */
static void virtblk_put_disks(struct virtio_blk *vblk)
{
	if (!virtblk_plain(vblk))
		put_disk(vblk->disk);
	put_disk(vblk->mq_disk);
	vblk->disk = NULL;
	vblk->mq_disk = NULL;
}

/*
 * Register the allocated disks, the hidden one first: the visible disk's
 * partition scan may already go down the request path.  On failure both
 * are dropped.
 */
static int virtblk_add_disks(struct virtio_blk *vblk)
{
	struct device *parent = &vblk->vdev->dev;
	int err;

	if (!virtblk_plain(vblk)) {
		err = device_add_disk(parent, vblk->mq_disk, NULL);
		if (err)
			goto out_put_disks;
	}

	virtblk_announce_path(vblk);
	err = device_add_disk(parent, vblk->disk, virtblk_attr_groups);
	if (err)
		goto out_del_mq_disk;
	/* Dropped by virtblk_free_disk(), once the disk is released. */
	kref_get(&vblk->ref);

	virtblk_debugfs_add(vblk);
	return 0;

out_del_mq_disk:
	if (!virtblk_plain(vblk))
		del_gendisk(vblk->mq_disk);
out_put_disks:
	virtblk_put_disks(vblk);
	return err;
}

/*
 * Unregister the disks; with @path_lock held.  The visible disk goes
 * first: its removal waits for the bio path and for new remaps to stop,
 * the hidden disk's then drains the requests.
 */
static void virtblk_del_disks(struct virtio_blk *vblk)
{
	virtblk_debugfs_remove(vblk);
	del_gendisk(vblk->disk);
	if (!virtblk_plain(vblk))
		del_gendisk(vblk->mq_disk);
	virtblk_put_disks(vblk);
}

/**
 * virtblk_reshape - re-create a plain disk in the bio-capable shape
 * @vblk: a device of the plain shape, with @path_lock held
 * @policy: enum virtblk_policy that selects the bio path, from sysfs
 *
 * The block layer fixes at allocation whether a disk is bio-based, so
 * reaching the bio path from a plain disk takes a new vdX, with the same
 * name and numbers.  Only a disk nobody holds open (no file system, no
 * opener, no holder) can go; new openers are refused meanwhile.  If the
 * new disks cannot be made, a plain disk is made again.
 *
 * Return: 0, -EBUSY if the disk is open, or the error of the last attempt
 * to make a disk.
 */
int virtblk_reshape(struct virtio_blk *vblk, int policy)
{
	struct gendisk *disk = vblk->disk;
	int err;

	mutex_lock(&disk->open_mutex);
	if (disk_openers(disk)) {
		mutex_unlock(&disk->open_mutex);
		dev_warn(&vblk->vdev->dev,
			 "[%s] in use: the bio path needs the disk re-created; close it first, or choose the path at probe (io_path=bio module parameter, or a udev rule that writes io_path before anything opens the disk)\n",
			 disk->disk_name);
		return -EBUSY;
	}
	vblk->reshaping = true;
	mutex_unlock(&disk->open_mutex);

	virtblk_del_disks(vblk);
	vblk->reshaping = false;
	virtblk_select_path(vblk, policy, true);

	err = virtblk_alloc_disks(vblk, true);
	if (!err)
		err = virtblk_add_disks(vblk);
	if (!err)
		return 0;

	dev_err(&vblk->vdev->dev, "cannot re-create the disk bio-capable: %d\n",
		err);
	virtblk_select_path(vblk, VIRTBLK_POLICY_REQUEST, true);
	err = virtblk_alloc_disks(vblk, false);
	if (!err)
		err = virtblk_add_disks(vblk);
	return err;
}

/*
 * Whether the device refused the features again, after a reset: it
 * does not set FEATURES_OK, or debugfs asked for that (fail_reinit).
 */
static bool virtblk_features_refused(struct virtio_blk *vblk)
{
	struct virtio_device *vdev = vblk->vdev;
	u32 inject = READ_ONCE(vblk->fail_reinit);

	if (inject) {
		WRITE_ONCE(vblk->fail_reinit, inject - 1);
		return true;
	}
	return !(vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_FEATURES_OK);
}

/*
 * Bring a device that was reset back to where probe left it, as the
 * virtio core does on resume: status, the features negotiated then, the
 * virtqueues (the old ones deleted), DRIVER_OK.  A reset forgets the
 * features: without them the device would run a ring format the driver
 * does not.
 */
static int virtblk_reinit_device(struct virtio_blk *vblk)
{
	struct virtio_device *vdev = vblk->vdev;
	int err;

	virtio_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	virtio_add_status(vdev, VIRTIO_CONFIG_S_DRIVER);
	err = vdev->config->finalize_features(vdev);
	if (err)
		goto out_failed;
	if (virtio_has_feature(vdev, VIRTIO_F_VERSION_1)) {
		virtio_add_status(vdev, VIRTIO_CONFIG_S_FEATURES_OK);
		if (virtblk_features_refused(vblk)) {
			err = -ENODEV;
			goto out_failed;
		}
	}
	err = virtblk_find_vqs(vblk);
	if (err)
		goto out_failed;
	virtio_device_ready(vdev);
	return 0;

out_failed:
	virtio_add_status(vdev, VIRTIO_CONFIG_S_FAILED);
	return err;
}

/**
 * virtblk_reset_work - recover from commands the device did not complete
 * @work: &virtio_blk.reset_work
 *
 * Queued by the request timeout handler and the bio path's watchdog.  As
 * a controller reset of NVMe: stop both paths (new commands of either
 * wait parked: no queue needs quiescing), reset the device, set up the
 * virtqueues again and resend what the device had.  A command that
 * timed out VIRTBLK_MAX_TIMEOUTS times ends with an I/O error instead,
 * and so does everything if the device does not come back.  Serialised
 * with breakage and suspend by @reset_lock; removal cancels it once the
 * disks are gone.  It takes neither @vdev_mutex, which a zone report
 * holds while it waits for I/O, nor any lock of the disks, whose removal
 * and re-creation wait for the I/O this ends.
 */
static void virtblk_reset_work(struct work_struct *work)
{
	struct virtio_blk *vblk = container_of(work, struct virtio_blk,
					       reset_work);
	struct virtblk_cmd *cmd, *next;
	struct virtio_device *vdev;
	LIST_HEAD(failed);
	unsigned int i;
	bool dead;
	int err;

	mutex_lock(&vblk->reset_lock);
	vdev = vblk->vdev;
	if (!vdev || vblk->broken || vblk->frozen)
		goto out_unlock;

	/* A device that is gone cannot be reset: fail its I/O. */
	if (vdev->config->get_status(vdev) == 0xff) {
		schedule_work(&vblk->broken_work);
		goto out_unlock;
	}

	WRITE_ONCE(vblk->resets, vblk->resets + 1);
	dev_warn_ratelimited(&vdev->dev,
			     "I/O timed out: resetting the device (reset %llu)\n",
			     vblk->resets);

	for (i = 0; i < vblk->num_vqs; i++)
		virtblk_reset_stop(&vblk->vqs[i]);
	/* No notification of an open gate is still on its way. */
	synchronize_rcu();

	/* What the device completed before it stopped answering. */
	for (i = 0; i < vblk->io_queues[HCTX_TYPE_DEFAULT]; i++)
		virtblk_done(vblk->vqs[i].vq);

	virtio_reset_device(vdev);
	for (i = 0; i < vblk->num_vqs; i++)
		virtblk_reset_collect(&vblk->vqs[i], &failed);

	vdev->config->del_vqs(vdev);
	err = virtblk_reinit_device(vblk);
	dead = err < 0;
	if (dead) {
		dev_err(&vdev->dev, "cannot set the device up again after a reset: %d; failing all I/O\n",
			err);
		vblk->broken = true;
	}

	for (i = 0; i < vblk->num_vqs; i++)
		virtblk_reset_restart(&vblk->vqs[i], dead);
	list_for_each_entry_safe(cmd, next, &failed, node)
		virtblk_fail_cmd(cmd);
out_unlock:
	mutex_unlock(&vblk->reset_lock);
}

static int virtblk_probe(struct virtio_device *vdev)
{
	struct virtio_blk *vblk;
	int err, index;

	if (!vdev->config->get) {
		dev_err(&vdev->dev, "config access disabled\n");
		return -EINVAL;
	}

	index = ida_alloc_range(&vd_index_ida, 0,
				(1 << (MINORBITS - VIRTBLK_PART_BITS)) - 1,
				GFP_KERNEL);
	if (index < 0)
		return index;

	vblk = kzalloc(sizeof(*vblk), GFP_KERNEL);
	if (!vblk) {
		err = -ENOMEM;
		goto out_free_index;
	}
	vdev->priv = vblk;
	vblk->vdev = vdev;
	vblk->index = index;
	kref_init(&vblk->ref);
	mutex_init(&vblk->vdev_mutex);
	mutex_init(&vblk->path_lock);
	mutex_init(&vblk->reset_lock);
	spin_lock_init(&vblk->reason_lock);
	spin_lock_init(&vblk->held_lock);
	bio_list_init(&vblk->held_bios);
	INIT_WORK(&vblk->config_work, virtblk_config_changed_work);
	INIT_DELAYED_WORK(&vblk->requeue_work, virtblk_requeue_work);
	INIT_WORK(&vblk->broken_work, virtblk_broken_work);
	INIT_WORK(&vblk->reset_work, virtblk_reset_work);
	vblk->io_timeout = VIRTBLK_IO_TIMEOUT;
	timer_setup(&vblk->bio_timer, virtblk_bio_timer, 0);

	err = virtblk_alloc_vqs(vblk);
	if (err)
		goto out_free_vblk;

	err = virtblk_find_vqs(vblk);
	if (err)
		goto out_free_vqs_array;

	err = virtblk_read_sg_elems(vblk);
	if (err)
		goto out_del_vqs;

	err = virtblk_bio_init(vblk);
	if (err)
		goto out_del_vqs;

	err = virtblk_mq_init(vblk, virtblk_default_depth(vblk));
	if (err)
		goto out_bio_exit;
	/* As many again as the tags: those wait parked for ring space. */
	vblk->bio_budget = 2 * vblk->tag_set.queue_depth;

	err = virtblk_probe_zoned(vblk);
	if (err)
		goto out_free_tags;

	vblk->medium = virtio_has_feature(vdev, VIRTIO_BLK_F_BIO);
	virtblk_read_medium(vblk);

	/* The shape follows the path the disk starts on. */
	virtblk_select_path(vblk, READ_ONCE(virtblk_io_path_param), false);
	err = virtblk_alloc_disks(vblk, vblk->path == VIRTBLK_PATH_BIO);
	if (err)
		goto out_free_tags;

	virtio_device_ready(vdev);

	/* The zone report goes through the virtqueues: after ready. */
	if (vblk->zoned) {
		err = blk_revalidate_disk_zones(vblk->disk);
		if (err) {
			virtblk_put_disks(vblk);
			goto out_reset;
		}
	}

	err = virtblk_add_disks(vblk);
	if (err)
		goto out_reset;
	cpuhp_state_add_instance_nocalls(virtblk_cpuhp_state, &vblk->cpuhp_node);
	return 0;

out_reset:
	virtio_reset_device(vdev);
out_free_tags:
	blk_mq_free_tag_set(&vblk->tag_set);
out_bio_exit:
	virtblk_bio_exit(vblk);
out_del_vqs:
	vdev->config->del_vqs(vdev);
out_free_vqs_array:
	kfree(vblk->vqs);
out_free_vblk:
	mutex_destroy(&vblk->reset_lock);
	mutex_destroy(&vblk->path_lock);
	mutex_destroy(&vblk->vdev_mutex);
	kfree(vblk);
out_free_index:
	ida_free(&vd_index_ida, index);
	return err;
}

static void virtblk_remove(struct virtio_device *vdev)
{
	struct virtio_blk *vblk = vdev->priv;

	cpuhp_state_remove_instance_nocalls(virtblk_cpuhp_state,
					    &vblk->cpuhp_node);
	/* Make sure no work handler is accessing the device. */
	flush_work(&vblk->config_work);

	mutex_lock(&vblk->path_lock);
	virtblk_del_disks(vblk);
	mutex_unlock(&vblk->path_lock);
	cancel_delayed_work_sync(&vblk->requeue_work);
	/* No I/O is left to time out. */
	timer_shutdown_sync(&vblk->bio_timer);
	cancel_work_sync(&vblk->reset_work);

	mutex_lock(&vblk->vdev_mutex);
	virtio_reset_device(vdev);
	/* No config interrupt after the reset: wait for the last one's work. */
	flush_work(&vblk->config_work);
	/*
	 * The queues are stopped, nothing can use vblk->vdev anymore; the
	 * broken-ring work looks at it under @reset_lock alone.
	 */
	mutex_lock(&vblk->reset_lock);
	vblk->vdev = NULL;
	vdev->config->del_vqs(vdev);
	mutex_unlock(&vblk->reset_lock);
	mutex_unlock(&vblk->vdev_mutex);
	/* Finds vdev gone if it still runs; no interrupt can queue it again. */
	flush_work(&vblk->broken_work);

	virtblk_bio_exit(vblk);
	blk_mq_free_tag_set(&vblk->tag_set);
	/* Frees vblk unless an opener still holds a disk. */
	kref_put(&vblk->ref, virtblk_release);
}

#ifdef CONFIG_PM_SLEEP
/*
 * As the in-tree driver since 7678abee0867: no queue stays frozen across
 * the suspend, where a task of the suspend sequence might submit I/O and
 * wait for it forever.  Requests wait in a quiesced queue, and bios of
 * the bio path are held (virtblk_bio_suspend()).
 */
static int virtblk_freeze(struct virtio_device *vdev)
{
	struct virtio_blk *vblk = vdev->priv;
	struct request_queue *q = vblk->mq_disk->queue;

	/*
	 * The core no longer passes configuration changes on.  One already
	 * queued may freeze the queues to follow the medium: it must finish
	 * while they still dispatch.
	 */
	flush_work(&vblk->config_work);

	if (!virtblk_plain(vblk))
		virtblk_bio_suspend(vblk);

	/* No request left on the rings, and none dispatched until restore. */
	blk_mq_freeze_queue(q);
	blk_mq_quiesce_queue_nowait(q);
	blk_mq_unfreeze_queue(q);

	/*
	 * A reset recovered what timed out while the queues drained; none
	 * may run on the virtqueues deleted below.
	 */
	mutex_lock(&vblk->reset_lock);
	vblk->frozen = true;
	mutex_unlock(&vblk->reset_lock);
	cancel_work_sync(&vblk->reset_work);
	del_timer_sync(&vblk->bio_timer);

	virtio_reset_device(vdev);
	cancel_delayed_work_sync(&vblk->requeue_work);
	vdev->config->del_vqs(vdev);
	return 0;
}

static int virtblk_restore(struct virtio_device *vdev)
{
	struct virtio_blk *vblk = vdev->priv;
	int err;

	err = virtblk_find_vqs(vblk);
	if (err)
		return err;

	virtio_device_ready(vdev);
	mutex_lock(&vblk->reset_lock);
	vblk->frozen = false;
	mutex_unlock(&vblk->reset_lock);
	blk_mq_unquiesce_queue(vblk->mq_disk->queue);
	if (!virtblk_plain(vblk))
		virtblk_bio_resume(vblk);
	return 0;
}
#endif

/*
 * The ring code allocates an indirect descriptor table for every command
 * of more than one buffer, i.e. for every data command.  On a
 * non-rotating medium with a low read latency, the one auto gives the bio
 * path, that allocation and free are a measurable part of a small
 * command's cost (see Documentation/block/virtio_blk-adaptive-design.rst),
 * while direct descriptors only cost ring slots.  The ring format is fixed
 * here, at negotiation, so it rests only on what is known now: a latency
 * the device reports, never one it has not measured yet.  Every other
 * device keeps indirect tables, which its large merged requests need to
 * fit in the ring, and so does every device when the io_path parameter
 * pins the request path: that path negotiates what the in-tree driver
 * does.
 */
static bool virtblk_direct_ring(struct virtio_device *vdev)
{
	struct virtio_blk_medium_config m;
	char why[VIRTBLK_REASON_LEN];
	u32 latency;

	if (!virtio_has_feature(vdev, VIRTIO_BLK_F_BIO) ||
	    virtio_has_feature(vdev, VIRTIO_BLK_F_ZONED) ||
	    READ_ONCE(virtblk_io_path_param) == VIRTBLK_POLICY_REQUEST)
		return false;

	virtio_cread_bytes(vdev, VIRTIO_BLK_CFG_MEDIUM_OFFSET, &m, sizeof(m));
	latency = virtio32_to_cpu(vdev, m.read_latency_hint);
	if (latency == VIRTIO_BLK_LATENCY_NOT_REPORTED)
		return false;
	return virtblk_medium_path(true, virtio16_to_cpu(vdev, m.rotation_rate),
				   latency, why, sizeof(why)) == VIRTBLK_PATH_BIO;
}

static int virtblk_validate(struct virtio_device *vdev)
{
	if (virtblk_direct_ring(vdev))
		__virtio_clear_bit(vdev, VIRTIO_RING_F_INDIRECT_DESC);
	return 0;
}

static const struct virtio_device_id id_table[] = {
	{ VIRTIO_ID_BLOCK, VIRTIO_DEV_ANY_ID },
	{ 0 },
};

/* Zoned devices are modern only, as in-tree: no VIRTIO_BLK_F_ZONED here. */
static unsigned int features_legacy[] = {
	VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_GEOMETRY,
	VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE,
	VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_CONFIG_WCE,
	VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES,
	VIRTIO_BLK_F_SECURE_ERASE,
};

static unsigned int features[] = {
	VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_GEOMETRY,
	VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE,
	VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_CONFIG_WCE,
	VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES,
	VIRTIO_BLK_F_SECURE_ERASE, VIRTIO_BLK_F_ZONED, VIRTIO_BLK_F_BIO,
};

static struct virtio_driver virtio_blk = {
	.feature_table			= features,
	.feature_table_size		= ARRAY_SIZE(features),
	.feature_table_legacy		= features_legacy,
	.feature_table_size_legacy	= ARRAY_SIZE(features_legacy),
	.driver.name			= KBUILD_MODNAME,
	.driver.dev_groups		= virtblk_vdev_attr_groups,
	.id_table			= id_table,
	.validate			= virtblk_validate,
	.probe				= virtblk_probe,
	.remove				= virtblk_remove,
	.config_changed			= virtblk_config_changed,
#ifdef CONFIG_PM_SLEEP
	.freeze				= virtblk_freeze,
	.restore			= virtblk_restore,
#endif
};

static int __init virtio_blk_init(void)
{
	size_t size = sizeof(struct virtblk_bio_cmd) +
		VIRTBLK_BIO_INLINE_SG * sizeof(struct scatterlist);
	int err;

	virtblk_bio_cmd_cache = kmem_cache_create("virtblk_bio_cmd", size, 0,
						  SLAB_HWCACHE_ALIGN, NULL);
	if (!virtblk_bio_cmd_cache)
		return -ENOMEM;

	virtblk_wq = alloc_workqueue("virtio-blk", 0, 0);
	if (!virtblk_wq) {
		err = -ENOMEM;
		goto out_destroy_cache;
	}
	virtblk_reset_wq = alloc_workqueue("virtio-blk-reset",
					   WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!virtblk_reset_wq) {
		err = -ENOMEM;
		goto out_destroy_workqueue;
	}

	major = register_blkdev(0, "virtblk");
	if (major < 0) {
		err = major;
		goto out_destroy_workqueue;
	}

	err = cpuhp_setup_state_multi(CPUHP_AP_ONLINE_DYN, "block/virtio_blk:online",
				      virtblk_cpu_online, virtblk_cpu_offline);
	if (err < 0)
		goto out_unregister_blkdev;
	virtblk_cpuhp_state = err;

	virtblk_debugfs_init();
	err = register_virtio_driver(&virtio_blk);
	if (err)
		goto out_debugfs_exit;
	return 0;

out_debugfs_exit:
	virtblk_debugfs_exit();
	cpuhp_remove_multi_state(virtblk_cpuhp_state);
out_unregister_blkdev:
	unregister_blkdev(major, "virtblk");
out_destroy_workqueue:
	if (virtblk_reset_wq)
		destroy_workqueue(virtblk_reset_wq);
	destroy_workqueue(virtblk_wq);
out_destroy_cache:
	kmem_cache_destroy(virtblk_bio_cmd_cache);
	return err;
}

static void __exit virtio_blk_fini(void)
{
	unregister_virtio_driver(&virtio_blk);
	virtblk_debugfs_exit();
	cpuhp_remove_multi_state(virtblk_cpuhp_state);
	unregister_blkdev(major, "virtblk");
	destroy_workqueue(virtblk_reset_wq);
	destroy_workqueue(virtblk_wq);
	kmem_cache_destroy(virtblk_bio_cmd_cache);
}
module_init(virtio_blk_init);
module_exit(virtio_blk_fini);

MODULE_DEVICE_TABLE(virtio, id_table);
MODULE_DESCRIPTION("Virtio block driver with bio and request paths");
MODULE_LICENSE("GPL");
/*
 * PACKAGE_VERSION in dkms.conf.  dkms installs over the in-tree module
 * only if the versions differ, and that one has none.
 */
MODULE_VERSION(VBLK_VERSION);
