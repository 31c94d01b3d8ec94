// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-device statistics in debugfs, for tests and for tuning.
 * /sys/kernel/debug/virtio_blk/vdX/queues holds one line per virtqueue
 * with the commands put on the ring and the notifications sent to the
 * device, whichever path they came from: their ratio shows how well
 * notifications are batched (across a plug, a blk-mq batch) and
 * suppressed by the device.  .../flushes holds the device flushes of the
 * bio path and the flush stages they served: their ratio shows how well
 * flushes are shared.  .../fail_reinit injects a fault: the next N
 * re-initialisations after a reset (the timeout handler's) fail as if the
 * device had refused FEATURES_OK, so that tests reach the path of a
 * device that does not come back.  Not an ABI.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/spinlock.h>

#include "virtio_blk.h"

static struct dentry *virtblk_debugfs_root;

static int virtblk_queues_show(struct seq_file *m, void *v)
{
	struct virtio_blk *vblk = m->private;
	unsigned int i;

	for (i = 0; i < vblk->num_vqs; i++) {
		struct virtblk_vq *bvq = &vblk->vqs[i];
		unsigned long flags;
		u64 added, notified, parked, held, nomem, waits;

		spin_lock_irqsave(&bvq->lock, flags);
		added = bvq->added;
		notified = bvq->notified;
		parked = bvq->parked_total;
		held = bvq->held_total;
		nomem = bvq->nomem_total;
		waits = bvq->budget_waits;
		spin_unlock_irqrestore(&bvq->lock, flags);

		seq_printf(m, "%s added %llu notified %llu parked %llu held %llu nomem %llu bios %d budget %u waits %llu\n",
			   bvq->name, added, notified, parked, held, nomem,
			   atomic_read(&bvq->bio_inflight), vblk->bio_budget,
			   waits);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(virtblk_queues);

static int virtblk_flushes_show(struct seq_file *m, void *v)
{
	struct virtio_blk *vblk = m->private;
	unsigned long flags;
	u64 flushes, stages;

	spin_lock_irqsave(&vblk->flush_lock, flags);
	flushes = vblk->flushes;
	stages = vblk->flush_stages;
	spin_unlock_irqrestore(&vblk->flush_lock, flags);

	seq_printf(m, "flushes %llu stages %llu\n", flushes, stages);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(virtblk_flushes);

/* Device resets after a command timed out */
static int virtblk_resets_show(struct seq_file *m, void *v)
{
	struct virtio_blk *vblk = m->private;

	seq_printf(m, "resets %llu\n", READ_ONCE(vblk->resets));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(virtblk_resets);

/* The medium the device reported last (VIRTIO_BLK_F_BIO) */
static int virtblk_medium_show(struct seq_file *m, void *v)
{
	struct virtio_blk *vblk = m->private;

	seq_printf(m, "offered %d\nrotation_rate %u\nread_latency_hint %u\n",
		   vblk->medium, READ_ONCE(vblk->rotation_rate),
		   READ_ONCE(vblk->read_latency_hint));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(virtblk_medium);

/**
 * virtblk_debugfs_add - create the device's debugfs directory
 * @vblk: the device, with its visible disk named
 *
 * Failures are not errors: debugfs may be absent, and nothing depends on
 * it.
 */
void virtblk_debugfs_add(struct virtio_blk *vblk)
{
	vblk->debugfs_dir = debugfs_create_dir(vblk->disk->disk_name,
					       virtblk_debugfs_root);
	debugfs_create_file("queues", 0400, vblk->debugfs_dir, vblk,
			    &virtblk_queues_fops);
	debugfs_create_file("flushes", 0400, vblk->debugfs_dir, vblk,
			    &virtblk_flushes_fops);
	debugfs_create_file("medium", 0400, vblk->debugfs_dir, vblk,
			    &virtblk_medium_fops);
	debugfs_create_file("resets", 0400, vblk->debugfs_dir, vblk,
			    &virtblk_resets_fops);
	debugfs_create_u32("fail_reinit", 0600, vblk->debugfs_dir,
			   &vblk->fail_reinit);
}

/**
 * virtblk_debugfs_remove - remove the device's debugfs directory
 * @vblk: the device
 *
 * Waits for readers, so @vblk->vqs may go once this returns.
 */
void virtblk_debugfs_remove(struct virtio_blk *vblk)
{
	debugfs_remove_recursive(vblk->debugfs_dir);
	vblk->debugfs_dir = NULL;
}

/**
 * virtblk_debugfs_init - create /sys/kernel/debug/virtio_blk
 */
void virtblk_debugfs_init(void)
{
	virtblk_debugfs_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
}

/**
 * virtblk_debugfs_exit - remove /sys/kernel/debug/virtio_blk
 */
void virtblk_debugfs_exit(void)
{
	debugfs_remove_recursive(virtblk_debugfs_root);
}
