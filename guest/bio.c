// SPDX-License-Identifier: GPL-2.0-only
/*
 * The visible disk's ->submit_bio and the bio path behind it.
 *
 * In bio mode a bio is split to the device limits, turned into one
 * command allocated from the submitting CPU's queue pool, and added to
 * that queue's virtqueue.  Kicks are deferred to the end of a plug.  A
 * full ring parks the command on the queue; the completion handler adds
 * parked commands back as space frees, so nothing waits busily and no
 * I/O is failed for lack of room.
 *
 * In request mode the bio is handed unchanged to the hidden blk-mq disk.
 * Only bio-capable disks come here: a plain disk is blk-mq itself.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blk-cgroup.h>
#include <linux/blkdev.h>
#include <linux/cpuhotplug.h>
#include <linux/delay.h>
#include <linux/mempool.h>
#include <linux/part_stat.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>

#include <trace/events/block.h>

#include "virtio_blk.h"

/* Commands each queue pool keeps in reserve for forward progress */
#define VIRTBLK_BIO_POOL_MIN	4
/* Free commands a CPU keeps for its next submissions */
#define VIRTBLK_CMD_CACHE_MAX	64

/*
 * The end of a plug (or the task sleeping inside it): notify the device
 * of everything added since the plug took the queue's callback.
 */
static void virtblk_unplug(struct blk_plug_cb *cb, bool from_schedule)
{
	struct virtblk_vq *bvq = container_of(cb, struct virtblk_vq, plug_cb);
	struct request_queue *q = bvq->vblk->disk->queue;

	WRITE_ONCE(bvq->plug_owner, NULL);
	clear_bit_unlock(0, &bvq->plug_busy);
	virtblk_kick(bvq);
	/* Pairs with the get in virtblk_defer_kick(). */
	percpu_ref_put(&q->q_usage_counter);
}

/*
 * Whether the notification for a command about to be added to @bvq can
 * wait for the end of the current task's plug.  Each queue has one
 * callback, embedded, so deferring allocates nothing: the first plugged
 * submitter takes it, and anyone else meanwhile notifies at once, which
 * is always correct, merely not batched.
 */
static bool virtblk_defer_kick(struct virtblk_vq *bvq)
{
	struct blk_plug *plug = current->plug;

	if (!plug)
		return false;
	if (READ_ONCE(bvq->plug_owner) == current)
		return true;
	if (test_and_set_bit_lock(0, &bvq->plug_busy))
		return false;
	/*
	 * The callback lives in the queue: keep the visible disk from being
	 * frozen (and the device removed) while a plug still links it.
	 */
	percpu_ref_get(&bvq->vblk->disk->queue->q_usage_counter);
	WRITE_ONCE(bvq->plug_owner, current);
	bvq->plug_cb.callback = virtblk_unplug;
	list_add(&bvq->plug_cb.list, &plug->cb_list);
	return true;
}

static void virtblk_bio_end(struct virtblk_bio_cmd *bc, blk_status_t status);
static void virtblk_bio_issue(struct virtblk_bio_cmd *bc, bool may_plug);

/* The lowest stage of @bc ended with @status: the next one, or the end */
static void virtblk_bio_stage_done(struct virtblk_bio_cmd *bc,
				   blk_status_t status)
{
	if (likely(status == BLK_STS_OK)) {
		bc->stages &= bc->stages - 1;
		if (bc->stages) {
			virtblk_bio_issue(bc, false);
			return;
		}
	}
	virtblk_bio_end(bc, status);
}

/* A bio command that virtblk_bio_queue_enter() let in has ended */
static void virtblk_bio_queue_exit(struct virtblk_vq *bvq)
{
	if (atomic_dec_return(&bvq->bio_inflight) < bvq->vblk->bio_budget &&
	    wq_has_sleeper(&bvq->bio_wait))
		wake_up(&bvq->bio_wait);
}

/* Load the header of the data stage */
static void virtblk_bio_prep_data(struct virtblk_bio_cmd *bc)
{
	struct virtio_device *vdev = bc->bvq->vblk->vdev;
	struct virtblk_cmd *cmd = &bc->cmd;

	cmd->out_hdr.type = cpu_to_virtio32(vdev, bc->data_type);
	if (bc->data_type == VIRTIO_BLK_T_IN ||
	    bc->data_type == VIRTIO_BLK_T_OUT)
		cmd->out_hdr.sector = cpu_to_virtio64(vdev,
						      bc->bio->bi_iter.bi_sector);
	else
		cmd->out_hdr.sector = 0;
	cmd->sg_table.nents = bc->data_nents;
}

/*
 * Flushes of the bio path are shared, as blk-flush shares them among
 * requests: a flush stage (the preflush of a bio, or the flush after a
 * FUA write's data) joins the next device flush.  One device flush is in
 * flight at a time; the stages that arrive meanwhile wait for the one
 * issued after it completes, which covers every write completed before
 * they arrived.  N concurrent fsyncs then cost two flushes, not N.
 *
 * The device flush is the device's own bio command, without a bio,
 * issued on the queue of the first stage it serves (which counts on that
 * queue until it ends: CPU hotplug drains it with them).
 */
static void virtblk_flush_issue(struct virtio_blk *vblk,
				struct virtblk_vq *bvq);

static void virtblk_flush_join(struct virtblk_bio_cmd *bc)
{
	struct virtio_blk *vblk = bc->bvq->vblk;
	unsigned long flags;
	bool start;

	spin_lock_irqsave(&vblk->flush_lock, flags);
	list_add_tail(&bc->cmd.node, &vblk->flush_pending);
	vblk->flush_stages++;
	start = !vblk->flush_busy;
	if (start) {
		vblk->flush_busy = true;
		list_splice_tail_init(&vblk->flush_pending,
				      &vblk->flush_running);
	}
	spin_unlock_irqrestore(&vblk->flush_lock, flags);

	if (start)
		virtblk_flush_issue(vblk, bc->bvq);
}

/* The device flush ended: its stages go on, the next one starts if due */
static void virtblk_flush_done(struct virtio_blk *vblk, blk_status_t status)
{
	struct gendisk *disk = vblk->disk;
	struct virtblk_bio_cmd *bc, *next;
	struct virtblk_vq *again = NULL;
	unsigned long flags;
	LIST_HEAD(done);

	if (blk_queue_io_stat(disk->queue)) {
		part_stat_lock();
		part_stat_inc(disk->part0, ios[STAT_FLUSH]);
		part_stat_add(disk->part0, nsecs[STAT_FLUSH],
			      ktime_get_ns() - vblk->flush_start);
		part_stat_unlock();
	}

	spin_lock_irqsave(&vblk->flush_lock, flags);
	list_splice_init(&vblk->flush_running, &done);
	if (list_empty(&vblk->flush_pending)) {
		vblk->flush_busy = false;
	} else {
		list_splice_init(&vblk->flush_pending, &vblk->flush_running);
		again = list_first_entry(&vblk->flush_running,
					 struct virtblk_bio_cmd, cmd.node)->bvq;
	}
	spin_unlock_irqrestore(&vblk->flush_lock, flags);

	if (again)
		virtblk_flush_issue(vblk, again);
	list_for_each_entry_safe(bc, next, &done, cmd.node)
		virtblk_bio_stage_done(bc, status);
}

static void virtblk_flush_issue(struct virtio_blk *vblk,
				struct virtblk_vq *bvq)
{
	struct virtblk_bio_cmd *fc = vblk->flush_cmd;
	enum virtblk_queued queued;
	unsigned long flags;

	fc->bvq = bvq;
	fc->cmd.out_hdr.type = cpu_to_virtio32(vblk->vdev, VIRTIO_BLK_T_FLUSH);
	fc->cmd.out_hdr.sector = 0;
	fc->cmd.out_hdr.ioprio = 0;
	fc->cmd.sg_table.nents = 0;
	fc->cmd.timeouts = 0;
	vblk->flush_start = ktime_get_ns();
	vblk->flushes++;

	spin_lock_irqsave(&bvq->lock, flags);
	queued = virtblk_queue_cmd(bvq, &fc->cmd);
	virtblk_submit_unlock(bvq, flags, true);
	if (unlikely(queued == VIRTBLK_REFUSED))
		virtblk_flush_done(vblk, BLK_STS_IOERR);
}

/*
 * Put the current stage on the ring, or park it.  @may_plug is false in
 * completion context, where current->plug belongs to whoever was
 * interrupted.
 */
static void virtblk_bio_issue(struct virtblk_bio_cmd *bc, bool may_plug)
{
	struct virtblk_vq *bvq = bc->bvq;
	enum virtblk_queued queued;
	unsigned long flags;
	bool deferred;

	if (!(bc->stages & VIRTBLK_STAGE_DATA) ||
	    bc->stages & VIRTBLK_STAGE_PREFLUSH) {
		virtblk_flush_join(bc);
		return;
	}

	deferred = may_plug && virtblk_defer_kick(bvq);
	virtblk_bio_prep_data(bc);

	spin_lock_irqsave(&bvq->lock, flags);
	queued = virtblk_queue_cmd(bvq, &bc->cmd);
	/* If parked, whatever is on the ring must run for space to free up. */
	virtblk_submit_unlock(bvq, flags,
			      queued == VIRTBLK_PARKED || !deferred);
	if (unlikely(queued == VIRTBLK_REFUSED))
		virtblk_bio_end(bc, BLK_STS_IOERR);
}

/*
 * Bio commands come from a small per-CPU cache first: taking one is a
 * few instructions with interrupts off, where a slab allocation through
 * the mempool costs a few hundred per I/O.  The slab cache and then the
 * queue's mempool reserve back it up.
 */
static struct virtblk_bio_cmd *virtblk_cmd_get(struct virtio_blk *vblk,
					       struct virtblk_vq *bvq,
					       gfp_t gfp)
{
	struct virtblk_cmd_cache *cache;
	struct virtblk_bio_cmd *bc;
	unsigned long flags;

	local_lock_irqsave(&vblk->cmd_cache->lock, flags);
	cache = this_cpu_ptr(vblk->cmd_cache);
	bc = cache->free;
	if (bc) {
		cache->free = bc->next_free;
		cache->nr--;
	}
	local_unlock_irqrestore(&vblk->cmd_cache->lock, flags);
	if (likely(bc))
		return bc;

	bc = kmem_cache_alloc(virtblk_bio_cmd_cache, GFP_NOWAIT | __GFP_NOWARN);
	if (unlikely(!bc))
		bc = mempool_alloc(bvq->cmd_pool, gfp);
	if (likely(bc))
		virtblk_init_cmd(&bc->cmd);
	return bc;
}

static void virtblk_cmd_put(struct virtio_blk *vblk, struct virtblk_bio_cmd *bc)
{
	mempool_t *pool = bc->bvq->cmd_pool;
	struct virtblk_cmd_cache *cache;
	unsigned long flags;
	bool cached = false;

	/* Refill a reserve that was drawn on before caching anything. */
	if (likely(READ_ONCE(pool->curr_nr) >= pool->min_nr)) {
		local_lock_irqsave(&vblk->cmd_cache->lock, flags);
		cache = this_cpu_ptr(vblk->cmd_cache);
		if (cache->nr < VIRTBLK_CMD_CACHE_MAX) {
			bc->next_free = cache->free;
			cache->free = bc;
			cache->nr++;
			cached = true;
		}
		local_unlock_irqrestore(&vblk->cmd_cache->lock, flags);
	}
	if (!cached)
		mempool_free(bc, pool);
}

static void virtblk_bio_end(struct virtblk_bio_cmd *bc, blk_status_t status)
{
	struct virtblk_vq *bvq = bc->bvq;
	struct virtio_blk *vblk = bvq->vblk;
	struct request_queue *q = vblk->disk->queue;
	struct bio *bio = bc->bio;

	if (bc->cmd.flags & VIRTBLK_CMD_ACCT)
		bio_end_io_acct(bio, bc->cmd.start_time);
	if (bc->sg_ext)
		mempool_free(bc->sg_ext, vblk->sg_pool);
	virtblk_cmd_put(vblk, bc);

	if (unlikely(status))
		bio->bi_status = status;
	bio_endio(bio);
	virtblk_bio_queue_exit(bvq);
	/* Pairs with the get in virtblk_bio_start(): lets freezes drain. */
	percpu_ref_put(&q->q_usage_counter);
}

/**
 * virtblk_bio_complete - a stage of a bio command finished
 * @bc: the command, no longer on any ring
 *
 * Runs in interrupt context without the queue lock.
 */
void virtblk_bio_complete(struct virtblk_bio_cmd *bc)
{
	blk_status_t status = virtblk_result(bc->cmd.status);

	/* The device's shared flush has no bio. */
	if (unlikely(!bc->bio)) {
		virtblk_flush_done(bc->bvq->vblk, status);
		return;
	}
	virtblk_bio_stage_done(bc, status);
}

/* Length of the segment at @addr, cut as the block layer counts them */
static inline unsigned int virtblk_seg_len(const struct queue_limits *lim,
					   phys_addr_t addr, unsigned int len)
{
	unsigned long max;

	max = min_t(unsigned long, lim->max_segment_size - 1,
		    lim->seg_boundary_mask - (addr & lim->seg_boundary_mask));
	return min_t(unsigned long, len, max + 1);
}

static unsigned int virtblk_bio_count_segs(const struct queue_limits *lim,
					   struct bio *bio)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	unsigned int nsegs = 0;

	bio_for_each_bvec(bv, bio, iter) {
		unsigned int done = 0;

		while (done < bv.bv_len) {
			done += virtblk_seg_len(lim, bvec_phys(&bv) + done,
						bv.bv_len - done);
			nsegs++;
		}
	}
	return nsegs;
}

static void virtblk_bio_map_segs(const struct queue_limits *lim,
				 struct bio *bio, struct scatterlist *sgl)
{
	struct scatterlist *sg = sgl;
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_bvec(bv, bio, iter) {
		unsigned int done = 0;

		while (done < bv.bv_len) {
			unsigned int off = bv.bv_offset + done;
			unsigned int len;

			len = virtblk_seg_len(lim, bvec_phys(&bv) + done,
					      bv.bv_len - done);
			sg_set_page(sg, nth_page(bv.bv_page, off >> PAGE_SHIFT),
				    len, offset_in_page(off));
			sg = sg_next(sg);
			done += len;
		}
	}
}

/* Map @bio into the single entry @sg if it is one segment */
static bool virtblk_bio_one_seg(const struct queue_limits *lim,
				struct bio *bio, struct scatterlist *sg)
{
	struct bio_vec bv = mp_bvec_iter_bvec(bio->bi_io_vec, bio->bi_iter);

	if (bv.bv_len != bio->bi_iter.bi_size ||
	    virtblk_seg_len(lim, bvec_phys(&bv), bv.bv_len) != bv.bv_len)
		return false;

	sg_init_table(sg, 1);
	sg_set_page(sg, nth_page(bv.bv_page, bv.bv_offset >> PAGE_SHIFT),
		    bv.bv_len, offset_in_page(bv.bv_offset));
	return true;
}

static blk_status_t virtblk_bio_map(struct virtio_blk *vblk,
				    struct virtblk_bio_cmd *bc, gfp_t gfp)
{
	const struct queue_limits *lim = &vblk->disk->queue->limits;
	struct scatterlist *sgl = bc->cmd.sg;
	unsigned int nsegs;

	/* No data (a zero-length read): the device sees the bare command. */
	if (unlikely(!bc->bio->bi_iter.bi_size))
		return BLK_STS_OK;

	/* Most bios are one segment: no walk, no table to build. */
	if (virtblk_bio_one_seg(lim, bc->bio, sgl)) {
		bc->cmd.sg_table.sgl = sgl;
		bc->data_nents = 1;
		return BLK_STS_OK;
	}

	nsegs = virtblk_bio_count_segs(lim, bc->bio);
	if (nsegs > VIRTBLK_BIO_INLINE_SG) {
		/* bio_split_to_limits() bounds this by max_segments. */
		if (WARN_ON_ONCE(nsegs > vblk->sg_elems || !vblk->sg_pool))
			return BLK_STS_IOERR;
		sgl = mempool_alloc(vblk->sg_pool, gfp);
		if (!sgl)
			return BLK_STS_AGAIN;
		bc->sg_ext = sgl;
	}

	sg_init_table(sgl, nsegs);
	virtblk_bio_map_segs(lim, bc->bio, sgl);
	bc->cmd.sg_table.sgl = sgl;
	bc->data_nents = nsegs;
	return BLK_STS_OK;
}

/* A discard, write-zeroes or secure erase: one range, device-readable */
static void virtblk_bio_map_range(struct virtio_blk *vblk,
				  struct virtblk_bio_cmd *bc, u32 flags)
{
	struct bio *bio = bc->bio;

	bc->range.flags = cpu_to_le32(flags);
	bc->range.num_sectors = cpu_to_le32(bio_sectors(bio));
	bc->range.sector = cpu_to_le64(bio->bi_iter.bi_sector);
	sg_init_one(bc->cmd.sg, &bc->range, sizeof(bc->range));
	bc->cmd.sg_table.sgl = bc->cmd.sg;
	bc->data_nents = 1;
}

static blk_status_t virtblk_bio_prep(struct virtio_blk *vblk,
				     struct virtblk_bio_cmd *bc, gfp_t gfp)
{
	struct bio *bio = bc->bio;
	u32 flags = 0;

	bc->stages = 0;
	bc->data_nents = 0;

	switch (bio_op(bio)) {
	case REQ_OP_READ:
		bc->data_type = VIRTIO_BLK_T_IN;
		bc->stages = VIRTBLK_STAGE_DATA;
		return virtblk_bio_map(vblk, bc, gfp);
	case REQ_OP_WRITE:
		bc->data_type = VIRTIO_BLK_T_OUT;
		/*
		 * The device may complete commands in any order, so each
		 * flush is its own stage: the data goes out only after the
		 * preflush completed, FUA is a flush after the data.
		 */
		if (bio->bi_opf & REQ_PREFLUSH)
			bc->stages |= VIRTBLK_STAGE_PREFLUSH;
		/* No data: a flush, or (a bare FUA) nothing at all. */
		if (!bio_sectors(bio))
			return BLK_STS_OK;
		bc->stages |= VIRTBLK_STAGE_DATA;
		if (bio->bi_opf & REQ_FUA)
			bc->stages |= VIRTBLK_STAGE_POSTFLUSH;
		return virtblk_bio_map(vblk, bc, gfp);
	case REQ_OP_DISCARD:
		bc->data_type = VIRTIO_BLK_T_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		bc->data_type = VIRTIO_BLK_T_WRITE_ZEROES;
		if (!(bio->bi_opf & REQ_NOUNMAP))
			flags |= VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		break;
	case REQ_OP_SECURE_ERASE:
		bc->data_type = VIRTIO_BLK_T_SECURE_ERASE;
		break;
	default:
		return BLK_STS_NOTSUPP;
	}

	bc->stages = VIRTBLK_STAGE_DATA;
	virtblk_bio_map_range(vblk, bc, flags);
	return BLK_STS_OK;
}

/*
 * The queue a bio command goes to: the submitting CPU's, unless the last
 * CPU of that queue's interrupt is going offline (virtblk_cpu_offline()
 * waits for the queue's commands, which this counts).  The count is taken
 * before the check, the offliner sets the flag before it reads the count:
 * one of the two sees the other.
 */
static struct virtblk_vq *virtblk_bio_pick_queue(struct virtio_blk *vblk)
{
	unsigned int first = virtblk_cpu_to_queue(vblk), i;
	unsigned int nr = vblk->io_queues[HCTX_TYPE_DEFAULT];
	struct virtblk_vq *bvq;

	for (i = 0; i < nr; i++) {
		bvq = &vblk->vqs[(first + i) % nr];
		atomic_inc(&bvq->bio_inflight);
		/* Pairs with virtblk_cpu_offline()'s. */
		smp_mb__after_atomic();
		if (likely(!READ_ONCE(bvq->inactive)))
			return bvq;
		atomic_dec(&bvq->bio_inflight);
	}
	/* Every queue inactive cannot be: the last CPU stays online. */
	bvq = &vblk->vqs[first];
	atomic_inc(&bvq->bio_inflight);
	return bvq;
}

/*
 * Enter a queue for a bio command, within the queue's budget: the bio
 * path has no tags, and without a bound a burst of writeback would queue
 * (park) without limit in front of a synchronous read.  A submitter over
 * the budget sleeps until a command of the queue ends (the sleep flushes
 * its plug, whose commands the device must see to end); REQ_NOWAIT gets
 * NULL instead.
 */
static struct virtblk_vq *virtblk_bio_queue_enter(struct virtio_blk *vblk,
						  struct bio *bio)
{
	unsigned int budget = vblk->bio_budget;
	struct virtblk_vq *bvq;

	for (;;) {
		bvq = virtblk_bio_pick_queue(vblk);
		if (likely(atomic_read(&bvq->bio_inflight) <= budget))
			return bvq;
		virtblk_bio_queue_exit(bvq);
		if (bio->bi_opf & REQ_NOWAIT)
			return NULL;
		spin_lock_irq(&bvq->lock);
		bvq->budget_waits++;
		spin_unlock_irq(&bvq->lock);
		io_wait_event(bvq->bio_wait,
			      atomic_read(&bvq->bio_inflight) < budget);
	}
}

static void virtblk_bio_start(struct virtio_blk *vblk, struct bio *bio)
{
	struct request_queue *q = vblk->disk->queue;
	gfp_t gfp = bio->bi_opf & REQ_NOWAIT ? GFP_NOWAIT : GFP_NOIO;
	blk_status_t status = BLK_STS_AGAIN;
	struct virtblk_bio_cmd *bc;
	struct virtblk_vq *bvq;

	bvq = virtblk_bio_queue_enter(vblk, bio);
	if (unlikely(!bvq)) {
		bio_wouldblock_error(bio);
		return;
	}

	bc = virtblk_cmd_get(vblk, bvq, gfp);
	if (unlikely(!bc))
		goto out_exit_queue;

	bc->bio = bio;
	bc->bvq = bvq;
	bc->sg_ext = NULL;
	bc->cmd.flags = VIRTBLK_CMD_BIO;
	bc->cmd.timeouts = 0;
	bc->cmd.out_hdr.ioprio = cpu_to_virtio32(vblk->vdev, bio_prio(bio));

	status = virtblk_bio_prep(vblk, bc, gfp);
	/* Nothing to send: blk-mq completes such a write at once too. */
	if (unlikely(status || !bc->stages))
		goto out_put_cmd;
	if (bc->data_type != VIRTIO_BLK_T_IN)
		bc->cmd.flags |= VIRTBLK_CMD_WRITE;

	/*
	 * A bio-based queue is only entered for the duration of
	 * ->submit_bio.  Hold it until the bio ends so that freezing the
	 * visible disk (removal, limit updates, suspend) waits for us.
	 */
	percpu_ref_get(&q->q_usage_counter);

	/* Like blk-mq, count no empty flush as a read or a write. */
	if (blk_queue_io_stat(q) && bio_sectors(bio)) {
		bc->cmd.start_time = bio_start_io_acct(bio);
		bc->cmd.flags |= VIRTBLK_CMD_ACCT;
	}

	virtblk_bio_issue(bc, true);
	return;

out_put_cmd:
	if (bc->sg_ext)
		mempool_free(bc->sg_ext, vblk->sg_pool);
	virtblk_cmd_put(vblk, bc);
out_exit_queue:
	virtblk_bio_queue_exit(bvq);
	if (status == BLK_STS_AGAIN) {
		bio_wouldblock_error(bio);
		return;
	}
	bio->bi_status = status;
	bio_endio(bio);
}

/* Whether @cpu is the last online CPU the default map sends to @queue */
static bool virtblk_last_cpu(struct virtio_blk *vblk, unsigned int queue,
			     unsigned int cpu)
{
	const unsigned int *map = vblk->tag_set.map[HCTX_TYPE_DEFAULT].mq_map;
	unsigned int other;

	if (map[cpu] != queue)
		return false;
	for_each_online_cpu(other)
		if (other != cpu && map[other] == queue)
			return false;
	return true;
}

/**
 * virtblk_cpu_offline - drain the bio path of queues losing their last CPU
 * @cpu: the CPU going offline
 * @node: &virtio_blk.cpuhp_node
 *
 * A queue's interrupt is managed: it is shut down with the last CPU of its
 * mask, and what is then on the ring completes only once one comes back.
 * blk-mq drains its requests before that (CPUHP_AP_BLK_MQ_ONLINE, which
 * runs after this state on the way down); this does the same for the bio
 * commands, parked ones included, and sends new ones elsewhere meanwhile.
 *
 * Return: 0.
 */
int virtblk_cpu_offline(unsigned int cpu, struct hlist_node *node)
{
	struct virtio_blk *vblk = hlist_entry_safe(node, struct virtio_blk,
						   cpuhp_node);
	unsigned int i;

	for (i = 0; i < vblk->io_queues[HCTX_TYPE_DEFAULT]; i++) {
		struct virtblk_vq *bvq = &vblk->vqs[i];

		if (!virtblk_last_cpu(vblk, i, cpu))
			continue;
		WRITE_ONCE(bvq->inactive, true);
		/* Pairs with virtblk_bio_pick_queue()'s. */
		smp_mb();
		while (atomic_read(&bvq->bio_inflight))
			usleep_range(1000, 5000);
	}
	return 0;
}

/**
 * virtblk_cpu_online - take queues of a CPU that came back into use again
 * @cpu: the CPU now online
 * @node: &virtio_blk.cpuhp_node
 *
 * Return: 0.
 */
int virtblk_cpu_online(unsigned int cpu, struct hlist_node *node)
{
	struct virtio_blk *vblk = hlist_entry_safe(node, struct virtio_blk,
						   cpuhp_node);
	unsigned int queue = vblk->tag_set.map[HCTX_TYPE_DEFAULT].mq_map[cpu];

	if (queue < vblk->io_queues[HCTX_TYPE_DEFAULT])
		WRITE_ONCE(vblk->vqs[queue].inactive, false);
	return 0;
}

/*
 * While the device is suspended, keep @bio for virtblk_bio_resume().
 * Returns false if the device is running (no longer) suspended.
 */
static bool virtblk_bio_hold(struct virtio_blk *vblk, struct bio *bio)
{
	bool held;

	spin_lock_irq(&vblk->held_lock);
	held = vblk->suspended;
	if (held)
		bio_list_add(&vblk->held_bios, bio);
	spin_unlock_irq(&vblk->held_lock);
	return held;
}

/*
 * The request path of a bio-capable disk: hand @bio to the hidden disk,
 * as a stacking driver would, and say so to blktrace on vdX.  This is
 * bio_set_dev() but for the cgroup: vdX's io.stat counted the bio
 * already, and a blkg of the submitter's cgroup on the hidden disk would
 * add a row to io.stat that, with no device number to name it, reads
 * "(unknown)".  The root cgroup has no io.stat.  mq.c accounts the
 * requests on vdX.
 */
static void virtblk_remap(struct virtio_blk *vblk, struct bio *bio)
{
	sector_t sector = bio->bi_iter.bi_sector;

	bio_clear_flag(bio, BIO_REMAPPED);
	bio_clear_flag(bio, BIO_BPS_THROTTLED);
	bio->bi_bdev = vblk->mq_disk->part0;
	bio_associate_blkg_from_css(bio, blkcg_root_css);
	trace_block_bio_remap(bio, disk_devt(vblk->disk), sector);
	submit_bio_noacct(bio);
}

/**
 * virtblk_submit_bio - ->submit_bio of the bio-capable visible disk
 * @bio: the bio
 *
 * The path is read once per entry: a switch affects bios submitted after
 * it.  The remainder of a split bio enters again and reads it anew; both
 * parts end through the chain whichever path each took.
 */
void virtblk_submit_bio(struct bio *bio)
{
	struct virtio_blk *vblk = bio->bi_bdev->bd_disk->private_data;

	if (READ_ONCE(vblk->path) == VIRTBLK_PATH_REQUEST) {
		virtblk_remap(vblk, bio);
		return;
	}

	if (unlikely(READ_ONCE(vblk->suspended)) && virtblk_bio_hold(vblk, bio))
		return;

	/* Polling is a request path feature; complete by interrupt. */
	bio_clear_polled(bio);

	bio = bio_split_to_limits(bio);
	if (!bio)
		return;

	virtblk_bio_start(vblk, bio);
}

/**
 * virtblk_bio_suspend - stop the bio path for a PM freeze
 * @vblk: a device of the bio-capable shape
 *
 * A bio-based queue cannot be quiesced, and one left frozen across the
 * suspend would block any task of the suspend sequence that submits to
 * it.  New bios are held instead; the freeze and unfreeze that follow
 * wait for those already issued, each of which holds the queue.
 */
void virtblk_bio_suspend(struct virtio_blk *vblk)
{
	struct request_queue *q = vblk->disk->queue;

	spin_lock_irq(&vblk->held_lock);
	vblk->suspended = true;
	spin_unlock_irq(&vblk->held_lock);

	blk_mq_freeze_queue(q);
	blk_mq_unfreeze_queue(q);
}

/**
 * virtblk_bio_resume - resubmit what virtblk_bio_suspend() held
 * @vblk: a device of the bio-capable shape, its queues found again
 */
void virtblk_bio_resume(struct virtio_blk *vblk)
{
	struct bio_list bios;
	struct bio *bio;

	spin_lock_irq(&vblk->held_lock);
	vblk->suspended = false;
	bios = vblk->held_bios;
	bio_list_init(&vblk->held_bios);
	spin_unlock_irq(&vblk->held_lock);

	while ((bio = bio_list_pop(&bios)))
		submit_bio_noacct(bio);
}

/**
 * virtblk_bio_init - set up the bio path allocations of a device
 * @vblk: the device, with its queues and sg_elems known
 *
 * Return: 0 or -ENOMEM.
 */
int virtblk_bio_init(struct virtio_blk *vblk)
{
	unsigned int i;
	int cpu;

	for (i = 0; i < vblk->num_vqs; i++)
		init_waitqueue_head(&vblk->vqs[i].bio_wait);

	spin_lock_init(&vblk->flush_lock);
	INIT_LIST_HEAD(&vblk->flush_pending);
	INIT_LIST_HEAD(&vblk->flush_running);
	vblk->flush_cmd = kmem_cache_zalloc(virtblk_bio_cmd_cache, GFP_KERNEL);
	if (!vblk->flush_cmd)
		return -ENOMEM;
	virtblk_init_cmd(&vblk->flush_cmd->cmd);
	vblk->flush_cmd->cmd.flags = VIRTBLK_CMD_BIO;

	vblk->cmd_cache = alloc_percpu(struct virtblk_cmd_cache);
	if (!vblk->cmd_cache)
		return -ENOMEM;
	for_each_possible_cpu(cpu)
		local_lock_init(&per_cpu_ptr(vblk->cmd_cache, cpu)->lock);

	for (i = 0; i < vblk->num_vqs; i++) {
		vblk->vqs[i].cmd_pool =
			mempool_create_slab_pool(VIRTBLK_BIO_POOL_MIN,
						 virtblk_bio_cmd_cache);
		if (!vblk->vqs[i].cmd_pool)
			goto out_free_pools;
	}

	if (vblk->sg_elems > VIRTBLK_BIO_INLINE_SG) {
		size_t size = vblk->sg_elems * sizeof(struct scatterlist);

		vblk->sg_pool = mempool_create_kmalloc_pool(VIRTBLK_BIO_POOL_MIN,
							    size);
		if (!vblk->sg_pool)
			goto out_free_pools;
	}
	return 0;

out_free_pools:
	virtblk_bio_exit(vblk);
	return -ENOMEM;
}

/**
 * virtblk_bio_exit - free what virtblk_bio_init() allocated
 * @vblk: the device, with no bio command left
 */
void virtblk_bio_exit(struct virtio_blk *vblk)
{
	struct virtblk_bio_cmd *bc;
	unsigned int i;
	int cpu;

	if (vblk->cmd_cache) {
		for_each_possible_cpu(cpu) {
			struct virtblk_cmd_cache *cache =
				per_cpu_ptr(vblk->cmd_cache, cpu);

			while ((bc = cache->free)) {
				cache->free = bc->next_free;
				kmem_cache_free(virtblk_bio_cmd_cache, bc);
			}
		}
		free_percpu(vblk->cmd_cache);
		vblk->cmd_cache = NULL;
	}

	mempool_destroy(vblk->sg_pool);
	vblk->sg_pool = NULL;
	if (vblk->flush_cmd)
		kmem_cache_free(virtblk_bio_cmd_cache, vblk->flush_cmd);
	vblk->flush_cmd = NULL;
	for (i = 0; i < vblk->num_vqs; i++) {
		mempool_destroy(vblk->vqs[i].cmd_pool);
		vblk->vqs[i].cmd_pool = NULL;
	}
}
