// SPDX-License-Identifier: GPL-2.0-only
/*
 * Virtqueue core shared by the bio and the request path: building a
 * command's descriptor chain, notifying the device, and reaping used
 * buffers, parking what does not fit.  Nothing here knows how a command
 * was built; the completion handler only looks at VIRTBLK_CMD_BIO to hand
 * it back to its owner.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>

#include "virtio_blk.h"

/**
 * virtblk_result - map a virtio-blk status byte to a block status
 * @status: VIRTIO_BLK_S_* written by the device
 *
 * Return: the blk_status_t to end the I/O with.
 */
blk_status_t virtblk_result(u8 status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return BLK_STS_OK;
	case VIRTIO_BLK_S_UNSUPP:
		return BLK_STS_NOTSUPP;
	default:
		return BLK_STS_IOERR;
	}
}

/**
 * virtblk_init_cmd - one-time set-up of a command's fixed buffers
 * @cmd: a command that is not in use
 *
 * The header and status entries point into the command itself, so they
 * are built once per command (per request tag, per bio command
 * allocation) rather than once per I/O.
 */
void virtblk_init_cmd(struct virtblk_cmd *cmd)
{
	sg_init_one(&cmd->hdr_sg, &cmd->out_hdr, sizeof(cmd->out_hdr));
	sg_init_one(&cmd->status_sg, &cmd->status, sizeof(cmd->status));
}

/*
 * Expose a command to the device, with the queue lock held.  Returns 0 or
 * the virtqueue_add_sgs() error (-ENOSPC when the ring is full).  The
 * device is not notified.
 */
static int virtblk_add_cmd(struct virtblk_vq *bvq, struct virtblk_cmd *cmd)
{
	struct scatterlist *sgs[3];
	unsigned int num_out = 0, num_in = 0;
	int err;

	sgs[num_out++] = &cmd->hdr_sg;

	if (cmd->sg_table.nents) {
		if (cmd->flags & VIRTBLK_CMD_WRITE)
			sgs[num_out++] = cmd->sg_table.sgl;
		else
			sgs[num_out + num_in++] = cmd->sg_table.sgl;
	}

	sgs[num_out + num_in++] = &cmd->status_sg;

	err = virtqueue_add_sgs(bvq->vq, sgs, num_out, num_in, cmd, GFP_ATOMIC);
	if (likely(!err))
		bvq->added++;
	return err;
}

/**
 * virtblk_queue_cmd - put a command on the ring, or park it
 * @bvq: the queue, with its lock held
 * @cmd: initialised command with out_hdr, flags and sg_table filled in
 *
 * A command that does not fit waits on @bvq->parked, and so does every
 * later one while any is parked: commands reach the device in the order
 * they were queued, whichever path they come from.  The completion
 * handler moves parked commands onto the ring as space frees, so a full
 * ring costs neither a busy retry nor a trip back through the block layer.
 * The device is not notified.
 *
 * Return: true if the command is on the ring, false if it was parked.
 */
bool virtblk_queue_cmd(struct virtblk_vq *bvq, struct virtblk_cmd *cmd)
{
	if (likely(list_empty(&bvq->parked)) &&
	    likely(!virtblk_add_cmd(bvq, cmd)))
		return true;

	list_add_tail(&cmd->node, &bvq->parked);
	bvq->parked_total++;
	return false;
}

/*
 * Whether nothing of a queue is on its ring (its lock held).  A command
 * parked on an idle ring (adding failed for want of memory, not of space)
 * has no completion coming to move it: see virtblk_requeue_work().
 */
static bool virtblk_ring_idle(struct virtblk_vq *bvq)
{
	return bvq->vq->num_free == virtqueue_get_vring_size(bvq->vq);
}

/* Move parked commands onto the ring; true if the device must be notified */
static bool virtblk_drain_parked(struct virtblk_vq *bvq)
{
	struct virtblk_cmd *cmd, *next;
	bool added = false;

	list_for_each_entry_safe(cmd, next, &bvq->parked, node) {
		if (virtblk_add_cmd(bvq, cmd))
			break;
		list_del(&cmd->node);
		added = true;
	}

	return added && virtblk_kick_prepare(bvq);
}

/**
 * virtblk_space_freed - hand ring space freed by reaping to who waits
 * @bvq: queue, with its lock held, after used buffers were reaped
 *
 * Parked commands first, then the hardware context stopped on a
 * held-back request, if any, and nothing else: unlike a restart of every
 * stopped context, that costs nothing when none was stopped.
 *
 * Return: true if the device must be notified.
 */
bool virtblk_space_freed(struct virtblk_vq *bvq)
{
	bool notify = false;

	if (unlikely(!list_empty(&bvq->parked)))
		notify = virtblk_drain_parked(bvq);
	if (unlikely(bvq->stopped_hctx)) {
		blk_mq_start_stopped_hw_queue(bvq->stopped_hctx, true);
		bvq->stopped_hctx = NULL;
	}
	return notify;
}

/**
 * virtblk_requeue_work - retry parked commands of an idle queue
 * @work: &virtio_blk.requeue_work
 *
 * Only needed when adding failed with nothing in flight (a transient
 * allocation failure in the ring code), so no completion will follow.
 */
void virtblk_requeue_work(struct work_struct *work)
{
	struct virtio_blk *vblk = container_of(to_delayed_work(work),
					       struct virtio_blk, requeue_work);
	unsigned int i;

	for (i = 0; i < vblk->num_vqs; i++) {
		struct virtblk_vq *bvq = &vblk->vqs[i];
		unsigned long flags;
		bool notify = false;
		bool again = false;

		spin_lock_irqsave(&bvq->lock, flags);
		if (!list_empty(&bvq->parked)) {
			notify = virtblk_drain_parked(bvq);
			again = !list_empty(&bvq->parked) &&
				virtblk_ring_idle(bvq);
		}
		spin_unlock_irqrestore(&bvq->lock, flags);

		if (notify)
			virtqueue_notify(bvq->vq);
		if (again)
			mod_delayed_work(system_wq, &vblk->requeue_work, HZ / 10);
	}
}

/**
 * virtblk_kick_prepare - whether the device needs a notification
 * @bvq: the queue, with its lock held
 *
 * virtqueue_kick_prepare(), counted: the notification itself is then up
 * to the caller, outside the lock.
 *
 * Return: true if the caller must call virtqueue_notify().
 */
bool virtblk_kick_prepare(struct virtblk_vq *bvq)
{
	if (!virtqueue_kick_prepare(bvq->vq))
		return false;
	bvq->notified++;
	return true;
}

/**
 * virtblk_submit_unlock - end a submission to a queue
 * @bvq: the queue, locked by the caller with spin_lock_irqsave()
 * @flags: the flags that spin_lock_irqsave() saved
 * @kick: whether the device is to see what was added now (false while a
 *	plug or a batch defers the notification)
 *
 * Drops the lock, then notifies the device if @kick and the ring asks for
 * it.  Commands parked on an idle ring have no completion coming to move
 * them: they are retried from virtblk_requeue_work().
 */
void virtblk_submit_unlock(struct virtblk_vq *bvq, unsigned long flags,
			   bool kick)
	__releases(&bvq->lock)
{
	bool notify = kick && virtblk_kick_prepare(bvq);
	bool idle = unlikely(!list_empty(&bvq->parked)) &&
		    virtblk_ring_idle(bvq);

	spin_unlock_irqrestore(&bvq->lock, flags);

	if (notify)
		virtqueue_notify(bvq->vq);
	if (unlikely(idle))
		mod_delayed_work(system_wq, &bvq->vblk->requeue_work, 1);
}

/**
 * virtblk_kick - notify the device of everything added to a queue
 * @bvq: the queue
 *
 * The notification itself is issued outside the lock: it may exit to the
 * host and take long.
 */
void virtblk_kick(struct virtblk_vq *bvq)
{
	unsigned long flags;
	bool notify;

	spin_lock_irqsave(&bvq->lock, flags);
	notify = virtblk_kick_prepare(bvq);
	spin_unlock_irqrestore(&bvq->lock, flags);

	if (notify)
		virtqueue_notify(bvq->vq);
}

/**
 * virtblk_cpu_to_queue - the queue serving the current CPU
 * @vblk: the device
 *
 * Uses the default map of the tag set, so that the bio path and the
 * request path send a CPU's I/O to the same virtqueue (and interrupt).
 *
 * Return: index into @vblk->vqs.
 */
unsigned int virtblk_cpu_to_queue(struct virtio_blk *vblk)
{
	const struct blk_mq_queue_map *map =
		&vblk->tag_set.map[HCTX_TYPE_DEFAULT];

	return map->queue_offset + map->mq_map[raw_smp_processor_id()];
}

/**
 * virtblk_done - virtqueue callback: reap used buffers
 * @vq: the virtqueue that has used buffers
 *
 * Used buffers are collected under the queue lock and completed after it
 * is dropped, so that completion handlers may submit I/O again.  Freed
 * ring space goes to parked commands at once, from this interrupt: the
 * device gets its next command without waiting for a submitter or a
 * worker to be scheduled (virtblk_space_freed()).
 */
void virtblk_done(struct virtqueue *vq)
{
	struct virtio_blk *vblk = vq->vdev->priv;
	struct virtblk_vq *bvq = &vblk->vqs[vq->index];
	struct rq_list rqs = { };
	struct virtblk_cmd *cmd, *next;
	LIST_HEAD(bios);
	unsigned long flags;
	bool found = false;
	bool notify = false;
	unsigned int len;

	spin_lock_irqsave(&bvq->lock, flags);
	do {
		virtqueue_disable_cb(vq);
		while ((cmd = virtqueue_get_buf(vq, &len)) != NULL) {
			if (cmd->flags & VIRTBLK_CMD_BIO) {
				list_add_tail(&cmd->node, &bios);
			} else {
				rq_list_add_tail(&rqs, blk_mq_rq_from_pdu(cmd));
				bvq->rq_queued--;
			}
			found = true;
		}
	} while (!virtqueue_enable_cb(vq));

	if (found)
		notify = virtblk_space_freed(bvq);
	spin_unlock_irqrestore(&bvq->lock, flags);

	if (notify)
		virtqueue_notify(vq);

	while (!rq_list_empty(&rqs)) {
		struct request *rq = rq_list_pop(&rqs);

		if (likely(!blk_should_fake_timeout(rq->q)))
			blk_mq_complete_request(rq);
	}

	list_for_each_entry_safe(cmd, next, &bios, node)
		virtblk_bio_complete(container_of(cmd, struct virtblk_bio_cmd,
						  cmd));
}
