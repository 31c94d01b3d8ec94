// SPDX-License-Identifier: GPL-2.0-only
/*
 * The request path: blk-mq operations of the blk-mq disk, which is vdX
 * itself in the plain shape and the hidden disk behind vdX in the
 * bio-capable one.  Requests get the scheduler, merging, tags and poll
 * queues; their PDU is a bare struct virtblk_cmd, no larger than the
 * in-tree driver's.  blk-mq accounts the I/O of a plain disk; the hidden
 * disk's is accounted on vdX, which is what users look at.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/blk-mq-virtio.h>
#include <linux/part_stat.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>

#include "virtio_blk.h"

static inline struct virtblk_vq *virtblk_hctx_vq(struct blk_mq_hw_ctx *hctx)
{
	struct virtio_blk *vblk = hctx->queue->queuedata;

	return &vblk->vqs[hctx->queue_num];
}

static int virtblk_rq_setup_ranges(struct request *rq, u32 flags)
{
	unsigned short segments = blk_rq_nr_discard_segments(rq);
	struct virtio_blk_discard_write_zeroes *range;
	unsigned short n = 0;
	struct bio *bio;

	range = kmalloc_array(segments, sizeof(*range), GFP_ATOMIC);
	if (!range)
		return -ENOMEM;

	/*
	 * With a single discard segment the block layer merges discards as
	 * contiguous data, so the bios do not describe the ranges.
	 */
	if (queue_max_discard_segments(rq->q) == 1) {
		range[0].flags = cpu_to_le32(flags);
		range[0].num_sectors = cpu_to_le32(blk_rq_sectors(rq));
		range[0].sector = cpu_to_le64(blk_rq_pos(rq));
		n = 1;
	} else {
		__rq_for_each_bio(bio, rq) {
			if (WARN_ON_ONCE(n >= segments))
				break;
			range[n].flags = cpu_to_le32(flags);
			range[n].num_sectors = cpu_to_le32(bio_sectors(bio));
			range[n].sector = cpu_to_le64(bio->bi_iter.bi_sector);
			n++;
		}
	}

	bvec_set_virt(&rq->special_vec, range, sizeof(*range) * n);
	rq->rq_flags |= RQF_SPECIAL_PAYLOAD;
	return 0;
}

static void virtblk_rq_cleanup(struct request *rq)
{
	if (rq->rq_flags & RQF_SPECIAL_PAYLOAD)
		kfree(bvec_virt(&rq->special_vec));
}

static void virtblk_rq_unmap(struct request *rq, struct virtblk_cmd *cmd)
{
	if (blk_rq_nr_phys_segments(rq))
		sg_free_table_chained(&cmd->sg_table, VIRTBLK_RQ_INLINE_SG);
}

static blk_status_t virtblk_rq_setup(struct virtio_device *vdev,
				     struct request *rq,
				     struct virtblk_cmd *cmd)
{
	u64 sector = 0;
	u32 flags = 0;
	u32 type;

	switch (req_op(rq)) {
	case REQ_OP_READ:
		type = VIRTIO_BLK_T_IN;
		sector = blk_rq_pos(rq);
		break;
	case REQ_OP_WRITE:
		type = VIRTIO_BLK_T_OUT;
		sector = blk_rq_pos(rq);
		break;
	case REQ_OP_FLUSH:
		type = VIRTIO_BLK_T_FLUSH;
		break;
	case REQ_OP_DISCARD:
		type = VIRTIO_BLK_T_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		type = VIRTIO_BLK_T_WRITE_ZEROES;
		if (!(rq->cmd_flags & REQ_NOUNMAP))
			flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		break;
	case REQ_OP_SECURE_ERASE:
		type = VIRTIO_BLK_T_SECURE_ERASE;
		break;
	/* Zone operations only reach the plain disk of a zoned device. */
	case REQ_OP_ZONE_APPEND:
		type = VIRTIO_BLK_T_ZONE_APPEND;
		sector = blk_rq_pos(rq);
		cmd->flags |= VIRTBLK_CMD_APPEND;
		break;
	case REQ_OP_ZONE_OPEN:
		type = VIRTIO_BLK_T_ZONE_OPEN;
		sector = blk_rq_pos(rq);
		break;
	case REQ_OP_ZONE_CLOSE:
		type = VIRTIO_BLK_T_ZONE_CLOSE;
		sector = blk_rq_pos(rq);
		break;
	case REQ_OP_ZONE_FINISH:
		type = VIRTIO_BLK_T_ZONE_FINISH;
		sector = blk_rq_pos(rq);
		break;
	case REQ_OP_ZONE_RESET:
		type = VIRTIO_BLK_T_ZONE_RESET;
		sector = blk_rq_pos(rq);
		break;
	case REQ_OP_ZONE_RESET_ALL:
		type = VIRTIO_BLK_T_ZONE_RESET_ALL;
		break;
	case REQ_OP_DRV_IN:
		/* The header was filled in by virtblk_drv_in(). */
		return BLK_STS_OK;
	default:
		return BLK_STS_NOTSUPP;
	}

	cmd->out_hdr.type = cpu_to_virtio32(vdev, type);
	cmd->out_hdr.sector = cpu_to_virtio64(vdev, sector);
	cmd->out_hdr.ioprio = cpu_to_virtio32(vdev, req_get_ioprio(rq));

	if (type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES ||
	    type == VIRTIO_BLK_T_SECURE_ERASE) {
		if (virtblk_rq_setup_ranges(rq, flags))
			return BLK_STS_RESOURCE;
	}
	return BLK_STS_OK;
}

/*
 * The partition of vdX that holds @sector, or vdX itself: behind a
 * bio-capable disk, requests carry the hidden disk and absolute sectors,
 * and statistics belong to the partition the I/O was for.  A request
 * that spans two partitions counts for the first, as blk-mq counts it.
 */
static struct block_device *virtblk_rq_part(struct virtio_blk *vblk,
					    sector_t sector)
{
	struct gendisk *disk = vblk->disk;
	struct block_device *part;
	unsigned long idx;

	rcu_read_lock();
	xa_for_each_start(&disk->part_tbl, idx, part, 1) {
		if (sector >= part->bd_start_sect &&
		    sector < part->bd_start_sect + bdev_nr_sectors(part))
			break;
	}
	rcu_read_unlock();
	return part ?: disk->part0;
}

/*
 * Once the request is queued: it is the driver's from now on, whether it
 * is on the ring or parked.  Only behind a bio-capable disk: blk-mq
 * accounts a plain disk's requests itself.  Flushes are counted as
 * blk-mq counts them, one per device flush, in nanoseconds.
 */
static void virtblk_rq_acct_start(struct virtio_blk *vblk, struct request *rq,
				  struct virtblk_cmd *cmd)
{
	if (virtblk_plain(vblk) || blk_rq_is_passthrough(rq) ||
	    !blk_queue_io_stat(vblk->disk->queue))
		return;
	if (req_op(rq) == REQ_OP_FLUSH)
		cmd->start_time = ktime_get_ns();
	else
		cmd->start_time = bdev_start_io_acct(virtblk_rq_part(vblk, blk_rq_pos(rq)),
						     req_op(rq), jiffies);
	cmd->flags |= VIRTBLK_CMD_ACCT;
}

static void virtblk_rq_acct_end(struct virtio_blk *vblk, struct request *rq,
				struct virtblk_cmd *cmd)
{
	struct block_device *part0 = vblk->disk->part0;

	if (req_op(rq) != REQ_OP_FLUSH) {
		bdev_end_io_acct(virtblk_rq_part(vblk, blk_rq_pos(rq)),
				 req_op(rq), blk_rq_bytes(rq) >> SECTOR_SHIFT,
				 cmd->start_time);
		return;
	}
	part_stat_lock();
	part_stat_inc(part0, ios[STAT_FLUSH]);
	part_stat_add(part0, nsecs[STAT_FLUSH], ktime_get_ns() - cmd->start_time);
	part_stat_unlock();
}

static blk_status_t virtblk_rq_prep(struct virtio_blk *vblk,
				    struct request *rq,
				    struct virtblk_cmd *cmd)
{
	blk_status_t status;
	int nents = 0;

	cmd->flags = op_is_write(req_op(rq)) ? VIRTBLK_CMD_WRITE : 0;
	/* A reset resends a request as it is: this is a new one. */
	cmd->timeouts = 0;
	cmd->on_ring = false;
	status = virtblk_rq_setup(vblk->vdev, rq, cmd);
	if (unlikely(status))
		return status;

	if (blk_rq_nr_phys_segments(rq)) {
		cmd->sg_table.sgl = cmd->sg;
		if (unlikely(sg_alloc_table_chained(&cmd->sg_table,
						    blk_rq_nr_phys_segments(rq),
						    cmd->sg,
						    VIRTBLK_RQ_INLINE_SG))) {
			virtblk_rq_cleanup(rq);
			return BLK_STS_RESOURCE;
		}
		nents = blk_rq_map_sg(rq->q, rq, cmd->sg_table.sgl);
	}
	cmd->sg_table.nents = nents;

	blk_mq_start_request(rq);
	return BLK_STS_OK;
}

/* Undo virtblk_rq_prep() for a request handed back or failed unqueued */
static void virtblk_rq_unprep(struct request *rq, struct virtblk_cmd *cmd)
{
	virtblk_rq_unmap(rq, cmd);
	virtblk_rq_cleanup(rq);
}

static void virtblk_rq_finish(struct request *rq, struct virtblk_cmd *cmd)
{
	struct virtio_blk *vblk = rq->q->queuedata;

	virtblk_rq_unmap(rq, cmd);
	virtblk_rq_cleanup(rq);
	if (cmd->flags & VIRTBLK_CMD_ACCT)
		virtblk_rq_acct_end(vblk, rq, cmd);
	/* The block layer hands the written sector back to the appender. */
	if ((cmd->flags & VIRTBLK_CMD_APPEND) && cmd->status == VIRTIO_BLK_S_OK)
		rq->__sector = virtio64_to_cpu(vblk->vdev, cmd->append_sector);
}

static void virtblk_rq_done(struct request *rq)
{
	struct virtblk_cmd *cmd = blk_mq_rq_to_pdu(rq);
	blk_status_t status = virtblk_result(cmd->status);

	virtblk_rq_finish(rq, cmd);
	blk_mq_end_request(rq, status);
}

/*
 * Whether a request that would park should rather go back to blk-mq, with
 * the queue lock held.  A request that finds the ring full is parked, not
 * handed back: the tag set is deeper than the ring (see
 * virtblk_default_depth()), and the completion that frees a slot puts the
 * next request on the ring itself, where a rerun of the context would
 * first have to be scheduled and leave slow storage idle meanwhile.
 *
 * But a parked request can no longer grow.  When one already waits and
 * this one continues the last request queued here (a sequential stream),
 * the next bios of the stream would merge into it in the scheduler: hand
 * it back (BLK_STS_DEV_RESOURCE), and keep the rest of the stream there,
 * until the ring has room.  One of our requests must be in flight: then a
 * completion on this queue, of either path, runs the context again.
 */
static bool virtblk_rq_hold_back(struct virtblk_vq *bvq, struct request *rq)
{
	return !list_empty(&bvq->parked) && bvq->rq_queued &&
	       blk_rq_pos(rq) == bvq->next_sector &&
	       !blk_rq_is_passthrough(rq);
}

static blk_status_t virtblk_queue_rq(struct blk_mq_hw_ctx *hctx,
				     const struct blk_mq_queue_data *bd)
{
	struct virtio_blk *vblk = hctx->queue->queuedata;
	struct virtblk_vq *bvq = virtblk_hctx_vq(hctx);
	struct request *rq = bd->rq;
	struct virtblk_cmd *cmd = blk_mq_rq_to_pdu(rq);
	enum virtblk_queued queued;
	unsigned long flags;
	blk_status_t status;

	status = virtblk_rq_prep(vblk, rq, cmd);
	if (unlikely(status))
		return status;

	spin_lock_irqsave(&bvq->lock, flags);
	if (unlikely(virtblk_rq_hold_back(bvq, rq))) {
		/* The completion handler restarts the context. */
		blk_mq_stop_hw_queue(hctx);
		bvq->stopped_hctx = hctx;
		bvq->held_total++;
		virtblk_submit_unlock(bvq, flags, true);
		virtblk_rq_unprep(rq, cmd);
		return BLK_STS_DEV_RESOURCE;
	}

	queued = virtblk_queue_cmd(bvq, cmd);
	if (unlikely(queued == VIRTBLK_REFUSED)) {
		virtblk_submit_unlock(bvq, flags, false);
		virtblk_rq_unprep(rq, cmd);
		return BLK_STS_IOERR;
	}
	bvq->rq_queued++;
	bvq->next_sector = blk_rq_pos(rq) + blk_rq_sectors(rq);
	virtblk_rq_acct_start(vblk, rq, cmd);
	/* If parked, whatever is on the ring must run for space to free up. */
	virtblk_submit_unlock(bvq, flags, queued == VIRTBLK_PARKED || bd->last);
	return BLK_STS_OK;
}

static void virtblk_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	virtblk_kick(virtblk_hctx_vq(hctx));
}

/*
 * Queue a batch of prepared requests for one queue, with one
 * notification.  Requests the ring refuses end with an error.
 */
static void virtblk_add_rq_batch(struct virtio_blk *vblk,
				 struct virtblk_vq *bvq, struct rq_list *batch)
{
	struct rq_list refused = { };
	struct request *rq;
	unsigned long flags;

	spin_lock_irqsave(&bvq->lock, flags);
	while ((rq = rq_list_pop(batch))) {
		struct virtblk_cmd *cmd = blk_mq_rq_to_pdu(rq);

		if (unlikely(virtblk_queue_cmd(bvq, cmd) == VIRTBLK_REFUSED)) {
			cmd->status = VIRTIO_BLK_S_IOERR;
			rq_list_add_tail(&refused, rq);
			continue;
		}
		bvq->rq_queued++;
		bvq->next_sector = blk_rq_pos(rq) + blk_rq_sectors(rq);
		virtblk_rq_acct_start(vblk, rq, cmd);
	}
	virtblk_submit_unlock(bvq, flags, true);

	while ((rq = rq_list_pop(&refused)))
		virtblk_rq_done(rq);
}

static void virtblk_queue_rqs(struct rq_list *rqlist)
{
	struct rq_list batch = { };
	struct rq_list requeue = { };
	struct virtblk_vq *bvq = NULL;
	struct virtio_blk *vblk = NULL;
	struct request *rq;

	while ((rq = rq_list_pop(rqlist))) {
		struct virtblk_vq *this = virtblk_hctx_vq(rq->mq_hctx);

		if (bvq != this && !rq_list_empty(&batch))
			virtblk_add_rq_batch(vblk, bvq, &batch);
		bvq = this;
		vblk = rq->q->queuedata;

		if (virtblk_rq_prep(vblk, rq, blk_mq_rq_to_pdu(rq)))
			rq_list_add_tail(&requeue, rq);
		else
			rq_list_add_tail(&batch, rq);
	}
	if (!rq_list_empty(&batch))
		virtblk_add_rq_batch(vblk, bvq, &batch);

	/* Left for ->queue_rq, one by one. */
	*rqlist = requeue;
}

static void virtblk_complete_batch(struct io_comp_batch *iob)
{
	struct request *rq;

	rq_list_for_each(&iob->req_list, rq)
		virtblk_rq_finish(rq, blk_mq_rq_to_pdu(rq));
	blk_mq_end_request_batch(iob);
}

static int virtblk_poll(struct blk_mq_hw_ctx *hctx, struct io_comp_batch *iob)
{
	struct virtio_blk *vblk = hctx->queue->queuedata;
	struct virtblk_vq *bvq = virtblk_hctx_vq(hctx);
	struct virtblk_cmd *cmd;
	unsigned long flags;
	bool notify = false;
	unsigned int len;
	int found = 0;

	spin_lock_irqsave(&bvq->lock, flags);
	/* The reset work owns the ring meanwhile. */
	if (unlikely(bvq->gate)) {
		spin_unlock_irqrestore(&bvq->lock, flags);
		return 0;
	}
	/* Only requests use poll queues: the bio path has no poll map. */
	while ((cmd = virtqueue_get_buf(bvq->vq, &len)) != NULL) {
		struct request *rq = blk_mq_rq_from_pdu(cmd);

		found++;
		bvq->rq_queued--;
		if (!blk_mq_complete_request_remote(rq) &&
		    !blk_mq_add_to_batch(rq, iob,
					 cmd->status != VIRTIO_BLK_S_OK,
					 virtblk_complete_batch))
			virtblk_rq_done(rq);
	}
	/* Poll queues have no interrupt: the poller moves parked requests. */
	if (found)
		notify = virtblk_space_freed(bvq);
	/* The virtqueue outlives the section: see virtblk_submit_unlock(). */
	rcu_read_lock();
	spin_unlock_irqrestore(&bvq->lock, flags);

	if (notify)
		virtqueue_notify(bvq->vq);
	if (unlikely(virtqueue_is_broken(bvq->vq)))
		schedule_work(&vblk->broken_work);
	rcu_read_unlock();

	return found;
}

/*
 * A request the device did not complete in time: count it, and have the
 * device reset (virtblk_reset_work()), which resends it, or fails it
 * once it timed out VIRTBLK_MAX_TIMEOUTS times.  The timer is restarted
 * meanwhile, so that a reset that cannot happen yet (the device is
 * suspending) is asked for again.  A request that completes meanwhile
 * ends as usual.
 *
 * blk-mq times a request from dispatch, but only the device's time
 * counts: a request waiting parked for room on the ring, or put on it
 * less than a timeout ago, just has its timer restarted.  The in-tree
 * driver hands a request that does not fit back to blk-mq, whose timer
 * does not run meanwhile.
 */
static enum blk_eh_timer_return virtblk_timeout(struct request *rq)
{
	struct virtio_blk *vblk = rq->q->queuedata;
	struct virtblk_vq *bvq = virtblk_hctx_vq(rq->mq_hctx);
	struct virtblk_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned long flags;
	bool late;
	u8 timeouts;

	spin_lock_irqsave(&bvq->lock, flags);
	late = cmd->on_ring && (u32)jiffies - cmd->ring_since >= rq->timeout;
	spin_unlock_irqrestore(&bvq->lock, flags);
	if (!late)
		return BLK_EH_RESET_TIMER;

	timeouts = READ_ONCE(cmd->timeouts);

	if (timeouts < U8_MAX)
		WRITE_ONCE(cmd->timeouts, timeouts + 1);
	dev_dbg(disk_to_dev(rq->q->disk), "request tag %d timed out (%u)\n",
		rq->tag, timeouts + 1);
	virtblk_schedule_reset(vblk);
	return BLK_EH_RESET_TIMER;
}

static void virtblk_map_queues(struct blk_mq_tag_set *set)
{
	struct virtio_blk *vblk = set->driver_data;
	unsigned int i, qoff;

	for (i = 0, qoff = 0; i < set->nr_maps; i++) {
		struct blk_mq_queue_map *map = &set->map[i];

		map->nr_queues = vblk->io_queues[i];
		map->queue_offset = qoff;
		qoff += map->nr_queues;

		if (!map->nr_queues)
			continue;

		/* Poll queues have no interrupt, hence no affinity to follow. */
		if (i == HCTX_TYPE_POLL)
			blk_mq_map_queues(map);
		else
			blk_mq_virtio_map_queues(map, vblk->vdev, 0);
	}
}

static int virtblk_init_request(struct blk_mq_tag_set *set, struct request *rq,
				unsigned int hctx_idx, unsigned int numa_node)
{
	virtblk_init_cmd(blk_mq_rq_to_pdu(rq));
	return 0;
}

static const struct blk_mq_ops virtblk_mq_ops = {
	.queue_rq	= virtblk_queue_rq,
	.queue_rqs	= virtblk_queue_rqs,
	.commit_rqs	= virtblk_commit_rqs,
	.complete	= virtblk_rq_done,
	.map_queues	= virtblk_map_queues,
	.poll		= virtblk_poll,
	.timeout	= virtblk_timeout,
	.init_request	= virtblk_init_request,
};

/**
 * virtblk_mq_init - set up the tag set of the blk-mq disk
 * @vblk: the device, with its queues found
 * @queue_depth: tags per hardware queue
 *
 * Return: 0 or a negative errno from blk_mq_alloc_tag_set().
 */
int virtblk_mq_init(struct virtio_blk *vblk, unsigned int queue_depth)
{
	struct blk_mq_tag_set *set = &vblk->tag_set;

	memset(set, 0, sizeof(*set));
	set->ops = &virtblk_mq_ops;
	set->queue_depth = queue_depth;
	set->numa_node = NUMA_NO_NODE;
	set->flags = BLK_MQ_F_SHOULD_MERGE;
	set->cmd_size = sizeof(struct virtblk_cmd) +
		sizeof(struct scatterlist) * VIRTBLK_RQ_INLINE_SG;
	set->driver_data = vblk;
	set->nr_hw_queues = vblk->num_vqs;
	set->nr_maps = vblk->io_queues[HCTX_TYPE_POLL] ? HCTX_MAX_TYPES : 1;

	return blk_mq_alloc_tag_set(set);
}

/**
 * virtblk_drv_in - send a command that reads from the device, and wait
 * @vblk: the device
 * @type: VIRTIO_BLK_T_GET_ID or VIRTIO_BLK_T_ZONE_REPORT
 * @sector: the header's sector field
 * @buf: where the device's answer goes
 * @len: its size
 *
 * Sent as a passthrough request on the blk-mq disk, whatever the path.
 *
 * Return: 0 or a negative errno (-EIO if the device does not support it).
 */
int virtblk_drv_in(struct virtio_blk *vblk, u32 type, sector_t sector,
		   void *buf, unsigned int len)
{
	struct request_queue *q = vblk->mq_disk->queue;
	struct virtblk_cmd *cmd;
	struct request *rq;
	int err;

	rq = blk_mq_alloc_request(q, REQ_OP_DRV_IN, 0);
	if (IS_ERR(rq))
		return PTR_ERR(rq);

	cmd = blk_mq_rq_to_pdu(rq);
	cmd->out_hdr.type = cpu_to_virtio32(vblk->vdev, type);
	cmd->out_hdr.sector = cpu_to_virtio64(vblk->vdev, sector);
	cmd->out_hdr.ioprio = 0;

	err = blk_rq_map_kern(q, rq, buf, len, GFP_KERNEL);
	if (err)
		goto out_free_rq;

	blk_execute_rq(rq, false);
	err = blk_status_to_errno(virtblk_result(cmd->status));
out_free_rq:
	blk_mq_free_request(rq);
	return err;
}
