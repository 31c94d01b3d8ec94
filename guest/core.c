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
#include <linux/rcupdate.h>
#include <linux/timer.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

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
	/* Zoned devices, mapped as the in-tree driver maps them */
	case VIRTIO_BLK_S_ZONE_OPEN_RESOURCE:
		return BLK_STS_ZONE_OPEN_RESOURCE;
	case VIRTIO_BLK_S_ZONE_ACTIVE_RESOURCE:
		return BLK_STS_ZONE_ACTIVE_RESOURCE;
	case VIRTIO_BLK_S_ZONE_INVALID_CMD:
	case VIRTIO_BLK_S_ZONE_UNALIGNED_WP:
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
	struct scatterlist *sgs[4], append_sg;
	unsigned int num_out = 0, num_in = 0;
	int err;

	sgs[num_out++] = &cmd->hdr_sg;

	if (cmd->sg_table.nents) {
		if (cmd->flags & VIRTBLK_CMD_WRITE)
			sgs[num_out++] = cmd->sg_table.sgl;
		else
			sgs[num_out + num_in++] = cmd->sg_table.sgl;
	}

	/*
	 * A zone append's in-header starts with the sector the data went
	 * to.  Only zoned devices send it, so its entry is built here rather
	 * than kept in every command; the ring copies it into a descriptor.
	 */
	if (unlikely(cmd->flags & VIRTBLK_CMD_APPEND)) {
		sg_init_one(&append_sg, &cmd->append_sector,
			    sizeof(cmd->append_sector));
		sgs[num_out + num_in++] = &append_sg;
	}

	sgs[num_out + num_in++] = &cmd->status_sg;

	err = virtqueue_add_sgs(bvq->vq, sgs, num_out, num_in, cmd, GFP_ATOMIC);
	if (unlikely(err))
		return err;
	bvq->added++;

	/* blk-mq times requests; the bio path's watchdog times the rest. */
	if (cmd->flags & VIRTBLK_CMD_BIO) {
		struct virtblk_bio_cmd *bc =
			container_of(cmd, struct virtblk_bio_cmd, cmd);
		struct virtio_blk *vblk = bvq->vblk;

		bc->deadline = jiffies + READ_ONCE(vblk->io_timeout);
		list_add_tail(&bc->ring_node, &bvq->bio_on_ring);
		if (!timer_pending(&vblk->bio_timer))
			timer_reduce(&vblk->bio_timer, bc->deadline);
	} else {
		cmd->on_ring = true;
		cmd->ring_since = (u32)jiffies;
	}
	return 0;
}

/* A bio command left the ring (the queue lock held) */
static void virtblk_bio_off_ring(struct virtblk_cmd *cmd)
{
	list_del(&container_of(cmd, struct virtblk_bio_cmd, cmd)->ring_node);
}

/*
 * Whether an add error is worth waiting out: no room on the ring, or no
 * memory to map the buffers (a full bounce buffer pool).  Anything else
 * (-EIO from a broken ring) will not go away.
 */
static bool virtblk_add_retriable(int err)
{
	return err == -ENOSPC || err == -ENOMEM;
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
 * Return: VIRTBLK_ON_RING, VIRTBLK_PARKED, or VIRTBLK_REFUSED when the
 * ring cannot take the command at all (the caller fails it).
 */
enum virtblk_queued virtblk_queue_cmd(struct virtblk_vq *bvq,
				      struct virtblk_cmd *cmd)
{
	int err;

	/* While the device is reset, everything waits parked. */
	if (unlikely(bvq->gate)) {
		if (bvq->gate == VIRTBLK_GATE_DEAD)
			return VIRTBLK_REFUSED;
	} else if (likely(list_empty(&bvq->parked))) {
		err = virtblk_add_cmd(bvq, cmd);
		if (likely(!err))
			return VIRTBLK_ON_RING;
		if (!virtblk_add_retriable(err)) {
			schedule_work(&bvq->vblk->broken_work);
			return VIRTBLK_REFUSED;
		}
		if (err == -ENOMEM)
			bvq->nomem_total++;
	}

	list_add_tail(&cmd->node, &bvq->parked);
	bvq->parked_total++;
	return VIRTBLK_PARKED;
}

/* Whether nothing of a queue is on its ring (its lock held) */
static bool virtblk_ring_idle(struct virtblk_vq *bvq)
{
	if (unlikely(bvq->gate))
		return false;
	return bvq->vq->num_free == virtqueue_get_vring_size(bvq->vq);
}

/*
 * Commands parked on an idle ring (adding failed for want of memory, not
 * of space) have no completion coming to move them: retry them from
 * virtblk_requeue_work() after blk-mq's resource delay.  Called with the
 * queue lock held after every attempt to add.  queue_delayed_work(), not
 * mod_: a stream of submitters must not keep pushing the retry back.
 */
static void virtblk_retry_if_stuck(struct virtblk_vq *bvq)
{
	if (unlikely(!list_empty(&bvq->parked)) && virtblk_ring_idle(bvq))
		queue_delayed_work(system_wq, &bvq->vblk->requeue_work,
				   msecs_to_jiffies(VIRTBLK_RETRY_MS));
}

/* Move parked commands onto the ring; true if the device must be notified */
static bool virtblk_drain_parked(struct virtblk_vq *bvq)
{
	struct virtblk_cmd *cmd, *next;
	bool added = false;
	int err;

	if (unlikely(bvq->gate))
		return false;
	list_for_each_entry_safe(cmd, next, &bvq->parked, node) {
		err = virtblk_add_cmd(bvq, cmd);
		if (err) {
			/* virtblk_broken_work() fails what stays parked. */
			if (!virtblk_add_retriable(err))
				schedule_work(&bvq->vblk->broken_work);
			else if (err == -ENOMEM)
				bvq->nomem_total++;
			break;
		}
		list_del(&cmd->node);
		added = true;
	}
	virtblk_retry_if_stuck(bvq);

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
 * A drain that still leaves an idle ring queues the work again.
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

		spin_lock_irqsave(&bvq->lock, flags);
		if (!list_empty(&bvq->parked))
			notify = virtblk_drain_parked(bvq);
		/* See virtblk_submit_unlock(). */
		rcu_read_lock();
		spin_unlock_irqrestore(&bvq->lock, flags);

		if (notify)
			virtqueue_notify(bvq->vq);
		rcu_read_unlock();
	}
}

/**
 * virtblk_fail_cmd - end a command the device will never use, with an error
 * @cmd: a command on no ring and no list; a request no longer counted in
 *	&virtblk_vq.rq_queued
 */
void virtblk_fail_cmd(struct virtblk_cmd *cmd)
{
	cmd->status = VIRTIO_BLK_S_IOERR;
	if (cmd->flags & VIRTBLK_CMD_BIO)
		virtblk_bio_complete(container_of(cmd, struct virtblk_bio_cmd,
						  cmd));
	else
		blk_mq_complete_request(blk_mq_rq_from_pdu(cmd));
}

/*
 * Move the commands parked on @bvq (its lock held) to the tail of @list,
 * to be failed once the lock is dropped; a request held back in blk-mq
 * is dispatched again, and refused by the closed gate.
 */
static void virtblk_take_parked(struct virtblk_vq *bvq, struct list_head *list)
{
	struct virtblk_cmd *cmd;

	lockdep_assert_held(&bvq->lock);
	list_for_each_entry(cmd, &bvq->parked, node)
		if (!(cmd->flags & VIRTBLK_CMD_BIO))
			bvq->rq_queued--;
	list_splice_tail_init(&bvq->parked, list);
	if (bvq->stopped_hctx) {
		blk_mq_start_stopped_hw_queue(bvq->stopped_hctx, true);
		bvq->stopped_hctx = NULL;
	}
}

/* Take back every command of a reset device's queue and fail it */
static void virtblk_fail_queue(struct virtblk_vq *bvq)
{
	struct virtblk_cmd *cmd, *next;
	unsigned long flags;
	LIST_HEAD(failed);

	spin_lock_irqsave(&bvq->lock, flags);
	/* What was on the ring goes first, as in a reset (counted the same) */
	while ((cmd = virtqueue_detach_unused_buf(bvq->vq))) {
		if (cmd->flags & VIRTBLK_CMD_BIO)
			virtblk_bio_off_ring(cmd);
		list_add_tail(&cmd->node, &failed);
	}
	list_splice_init(&failed, &bvq->parked);
	virtblk_take_parked(bvq, &failed);
	spin_unlock_irqrestore(&bvq->lock, flags);

	list_for_each_entry_safe(cmd, next, &failed, node)
		virtblk_fail_cmd(cmd);
}

/**
 * virtblk_broken_work - fail all I/O of a device whose virtqueue broke
 * @work: &virtio_blk.broken_work
 *
 * A broken virtqueue (the device wrote a used entry that makes no sense,
 * or it was surprise-removed) takes no buffer and returns none: whatever
 * is on it or parked would wait forever, and so would removal.  Reset the
 * device so that it lets go of the buffers, mark every queue broken so
 * that new commands are refused at once, and end what was outstanding
 * with an I/O error, as the in-tree driver ends new I/O to a broken ring.
 * A device that is gone reads back an all-ones status, and a reset would
 * wait for it forever: it cannot touch the buffers anymore anyway.
 */
void virtblk_broken_work(struct work_struct *work)
{
	struct virtio_blk *vblk = container_of(work, struct virtio_blk,
					       broken_work);
	struct virtio_device *vdev;
	unsigned int i;

	/*
	 * Not @vdev_mutex: a zone report holds it while it waits for its
	 * command, which only this work can end.  Removal clears @vdev
	 * under @reset_lock too.
	 */
	mutex_lock(&vblk->reset_lock);
	vdev = vblk->vdev;
	if (!vdev || vblk->broken)	/* removed, or failed already */
		goto out_unlock;
	vblk->broken = true;

	dev_err(&vdev->dev, "virtqueue broken: resetting the device, failing its I/O\n");
	if (vdev->config->get_status(vdev) != 0xff)
		virtio_reset_device(vdev);
	virtio_break_device(vdev);
	for (i = 0; i < vblk->num_vqs; i++)
		virtblk_fail_queue(&vblk->vqs[i]);
out_unlock:
	mutex_unlock(&vblk->reset_lock);
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
	if (unlikely(bvq->gate) || !virtqueue_kick_prepare(bvq->vq))
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
 * it.  Commands parked on an idle ring are retried later, see
 * virtblk_retry_if_stuck().
 *
 * The notification goes out in an RCU read-side section that starts
 * before the lock is dropped: a device reset closes the gate of every
 * queue under its lock, then waits for a grace period before it deletes
 * the virtqueues, so no notification can reach a deleted one.
 */
void virtblk_submit_unlock(struct virtblk_vq *bvq, unsigned long flags,
			   bool kick)
	__releases(&bvq->lock)
{
	bool notify = kick && virtblk_kick_prepare(bvq);

	virtblk_retry_if_stuck(bvq);
	rcu_read_lock();
	spin_unlock_irqrestore(&bvq->lock, flags);

	if (notify)
		virtqueue_notify(bvq->vq);
	rcu_read_unlock();
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
	/* See virtblk_submit_unlock(). */
	rcu_read_lock();
	spin_unlock_irqrestore(&bvq->lock, flags);

	if (notify)
		virtqueue_notify(bvq->vq);
	rcu_read_unlock();
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

	/* mq_map holds queue_offset + queue already. */
	return map->mq_map[raw_smp_processor_id()];
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
				virtblk_bio_off_ring(cmd);
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
	/* A used entry that made no sense broke the ring: see there. */
	if (unlikely(virtqueue_is_broken(vq)))
		schedule_work(&vblk->broken_work);

	while (!rq_list_empty(&rqs)) {
		struct request *rq = rq_list_pop(&rqs);

		if (likely(!blk_should_fake_timeout(rq->q)))
			blk_mq_complete_request(rq);
	}

	list_for_each_entry_safe(cmd, next, &bios, node)
		virtblk_bio_complete(container_of(cmd, struct virtblk_bio_cmd,
						  cmd));
}

/**
 * virtblk_schedule_reset - have the device reset: a command timed out
 * @vblk: the device
 */
void virtblk_schedule_reset(struct virtio_blk *vblk)
{
	queue_work(virtblk_reset_wq, &vblk->reset_work);
}

/**
 * virtblk_bio_timer - the bio path's watchdog
 * @t: &virtio_blk.bio_timer
 *
 * Bio commands have no blk-mq timer: each queue keeps those on its ring
 * in the order they were added, so the first is the oldest.  Every one
 * past its deadline counts a timeout, gets a new deadline (as blk-mq
 * restarts the timer of a request whose handler asks for it) and has the
 * device reset; the timer is armed again for the earliest deadline left.
 * Runs in softirq context.
 */
void virtblk_bio_timer(struct timer_list *t)
{
	struct virtio_blk *vblk = from_timer(vblk, t, bio_timer);
	unsigned long now = jiffies, next = 0;
	bool expired = false, pending = false;
	unsigned int i;

	for (i = 0; i < vblk->num_vqs; i++) {
		struct virtblk_vq *bvq = &vblk->vqs[i];
		struct virtblk_bio_cmd *bc, *tmp;
		unsigned long flags;
		LIST_HEAD(late);

		spin_lock_irqsave(&bvq->lock, flags);
		list_for_each_entry_safe(bc, tmp, &bvq->bio_on_ring, ring_node) {
			if (time_before(now, bc->deadline))
				break;
			if (bc->cmd.timeouts < U8_MAX)
				bc->cmd.timeouts++;
			bc->deadline = now + READ_ONCE(vblk->io_timeout);
			list_move_tail(&bc->ring_node, &late);
			expired = true;
		}
		list_splice_tail(&late, &bvq->bio_on_ring);
		bc = list_first_entry_or_null(&bvq->bio_on_ring,
					      struct virtblk_bio_cmd, ring_node);
		if (bc && (!pending || time_before(bc->deadline, next))) {
			next = bc->deadline;
			pending = true;
		}
		spin_unlock_irqrestore(&bvq->lock, flags);
	}

	if (expired) {
		dev_dbg(&vblk->vdev->dev, "bio command timed out\n");
		virtblk_schedule_reset(vblk);
	}
	if (pending)
		timer_reduce(&vblk->bio_timer, next);
}

/**
 * virtblk_reset_stop - close a queue's gate for a device reset
 * @bvq: the queue
 *
 * From now on, commands of both paths wait parked and nothing notifies
 * the device through this queue; the caller waits for a grace period
 * before it resets the device (see virtblk_submit_unlock()).
 */
void virtblk_reset_stop(struct virtblk_vq *bvq)
{
	spin_lock_irq(&bvq->lock);
	bvq->gate = VIRTBLK_GATE_RESET;
	spin_unlock_irq(&bvq->lock);
}

/**
 * virtblk_reset_collect - take back what a reset device had of a queue
 * @bvq: the queue, its gate closed, the device reset
 * @failed: where commands that timed out too often go, to be failed
 *
 * Everything the device had (on the ring, done or not but not reaped)
 * goes back to the head of @bvq->parked, before what was parked already
 * (in ring slot order: the device may complete commands in any order
 * anyway), and the restart resends it all as it was built.  A command
 * that timed out VIRTBLK_MAX_TIMEOUTS times goes to @failed instead.
 */
void virtblk_reset_collect(struct virtblk_vq *bvq, struct list_head *failed)
{
	struct virtblk_cmd *cmd, *next;
	LIST_HEAD(taken);

	spin_lock_irq(&bvq->lock);
	while ((cmd = virtqueue_detach_unused_buf(bvq->vq))) {
		if (cmd->flags & VIRTBLK_CMD_BIO)
			virtblk_bio_off_ring(cmd);
		cmd->on_ring = false;
		list_add_tail(&cmd->node, &taken);
	}
	list_splice_init(&taken, &bvq->parked);

	list_for_each_entry_safe(cmd, next, &bvq->parked, node) {
		if (READ_ONCE(cmd->timeouts) < VIRTBLK_MAX_TIMEOUTS)
			continue;
		list_move_tail(&cmd->node, failed);
		if (!(cmd->flags & VIRTBLK_CMD_BIO))
			bvq->rq_queued--;
	}
	spin_unlock_irq(&bvq->lock);
}

/**
 * virtblk_reset_restart - open a queue's gate again after a reset
 * @bvq: the queue, with its virtqueue found again
 * @dead: the device could not be brought back: refuse commands instead,
 *	and end what is parked with an I/O error
 */
void virtblk_reset_restart(struct virtblk_vq *bvq, bool dead)
{
	struct virtblk_cmd *cmd, *next;
	bool notify = false;
	LIST_HEAD(failed);

	spin_lock_irq(&bvq->lock);
	if (dead) {
		bvq->gate = VIRTBLK_GATE_DEAD;
		virtblk_take_parked(bvq, &failed);
	} else {
		bvq->gate = VIRTBLK_GATE_OPEN;
		/* As if the whole ring had just been reaped */
		notify = virtblk_space_freed(bvq);
	}
	spin_unlock_irq(&bvq->lock);

	if (notify)
		virtqueue_notify(bvq->vq);
	list_for_each_entry_safe(cmd, next, &failed, node)
		virtblk_fail_cmd(cmd);
}
