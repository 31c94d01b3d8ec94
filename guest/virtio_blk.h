/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Private interfaces of the adaptive virtio block driver.
 *
 * A device has one of two shapes, chosen at probe from the path it starts
 * on.  On the request path it is a plain blk-mq disk (vdX), as the in-tree
 * driver makes it.  On the bio path it is "bio-capable": a visible
 * bio-based disk (vdX) and a hidden blk-mq disk behind it, so that vdX can
 * switch between the two paths at run time.  Both feed the same
 * virtqueues through the command core in core.c.  See
 * Documentation/block/virtio_blk-adaptive-design.rst.
 */
#ifndef _VIRTIO_BLK_ADAPTIVE_H
#define _VIRTIO_BLK_ADAPTIVE_H

#include <linux/blk-mq.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/kref.h>
#include <linux/local_lock.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/spinlock.h>
#include <linux/timer.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#define VIRTBLK_VQ_NAME_LEN	16

/* Delay of a retry of commands parked on an idle ring, as blk-mq's */
#define VIRTBLK_RETRY_MS	3

/* Default time a command may take before the device is reset, as blk-mq's */
#define VIRTBLK_IO_TIMEOUT	(30 * HZ)
/* Timeouts of one command after which it fails rather than being resent */
#define VIRTBLK_MAX_TIMEOUTS	2

/* Inline scatterlist entries of a request (the rest is chained) */
#define VIRTBLK_RQ_INLINE_SG	2
/* Inline scatterlist entries of a bio command (the rest is pooled) */
#define VIRTBLK_BIO_INLINE_SG	4

enum virtblk_path {
	VIRTBLK_PATH_BIO,
	VIRTBLK_PATH_REQUEST,
};

enum virtblk_policy {
	VIRTBLK_POLICY_AUTO,
	VIRTBLK_POLICY_BIO,
	VIRTBLK_POLICY_REQUEST,
};

/* Room for an io_path_reason line, the longest with two 10-digit values */
#define VIRTBLK_REASON_LEN	112

/* virtblk_vq.gate: whether commands may go on the ring */
enum virtblk_gate {
	VIRTBLK_GATE_OPEN,	/* yes */
	VIRTBLK_GATE_RESET,	/* the device is being reset: park them */
	VIRTBLK_GATE_DEAD,	/* the reset failed: refuse them */
};

/* What virtblk_queue_cmd() did with a command */
enum virtblk_queued {
	VIRTBLK_ON_RING,	/* added; the device is yet to be notified */
	VIRTBLK_PARKED,		/* no room or memory now: retried later */
	VIRTBLK_REFUSED,	/* the ring cannot take it (broken): fail it */
};

/* virtblk_cmd.flags */
#define VIRTBLK_CMD_BIO		BIT(0)	/* embedded in a virtblk_bio_cmd */
#define VIRTBLK_CMD_ACCT	BIT(1)	/* accounted on the visible disk */
#define VIRTBLK_CMD_WRITE	BIT(2)	/* the device reads the data buffers */
#define VIRTBLK_CMD_APPEND	BIT(3)	/* zone append: in-header has a sector */

/**
 * struct virtblk_cmd - what one virtqueue buffer carries
 * @out_hdr: command header read by the device
 * @status: status byte written by the device
 * @flags: VIRTBLK_CMD_*; tells the completion handler which path owns it
 * @timeouts: how often the command timed out; kept when a device reset
 *	resends it, cleared when it is built (VIRTBLK_MAX_TIMEOUTS)
 * @on_ring: a request is on the ring, not parked (under the queue lock)
 * @ring_since: when a request went onto the ring, the low 32 bits of
 *	jiffies: the device's time is what its timeout counts
 *	(virtblk_timeout()); the bio path's watchdog keeps its own deadline
 * @start_time: I/O accounting start on the visible disk
 * @append_sector: where the device wrote the data of a zone append, the
 *	part of the in-header before @status (VIRTBLK_CMD_APPEND)
 * @node: on &virtblk_vq.parked while the ring is full, then on the
 *	completion handler's list of finished bio commands
 * @hdr_sg: @out_hdr, set up once by virtblk_init_cmd()
 * @status_sg: @status, likewise
 * @sg_table: data (or discard ranges); nents == 0 for none
 * @sg: inline scatterlist entries
 *
 * This is the blk-mq PDU of the hidden disk as is, and the tail of a bio
 * command.  The token added to the virtqueue is always a pointer to it.
 *
 * The in-header is @status alone, except for a zone append, whose
 * in-header is @append_sector followed by @status, in two descriptors
 * (virtblk_add_cmd()).  Only the plain disk of a zoned device sends zone
 * appends, and a plain disk never accounts its requests itself, so
 * @append_sector shares the room of @start_time: zoned support costs no
 * request a byte.
 */
struct virtblk_cmd {
	struct virtio_blk_outhdr out_hdr;
	u8 status;
	u8 flags;
	u8 timeouts;
	bool on_ring;
	u32 ring_since;
	union {
		unsigned long start_time;
		__virtio64 append_sector;
	};
	struct list_head node;
	struct scatterlist hdr_sg;
	struct scatterlist status_sg;
	struct sg_table sg_table;
	struct scatterlist sg[];
};

/**
 * struct virtblk_bio_cmd - a bio in flight on the bio path
 * @next_free: in a per-CPU command cache
 * @ring_node: on &virtblk_vq.bio_on_ring while the device has the command
 * @deadline: when the command on the ring times out (jiffies)
 * @bio: the bio, ended when the last stage completes
 * @bvq: queue the command was allocated from and is issued to
 * @sg_ext: pooled scatterlist when @cmd.sg is too small, else NULL
 * @data_type: VIRTIO_BLK_T_* of the data stage
 * @data_nents: scatterlist entries of the data stage
 * @stages: VIRTBLK_STAGE_* still to issue, lowest first
 * @range: the single range of a discard, write-zeroes or secure erase
 * @cmd: the virtqueue command, reused by every stage
 */
struct virtblk_bio_cmd {
	struct virtblk_bio_cmd *next_free;
	struct list_head ring_node;
	unsigned long deadline;
	struct bio *bio;
	struct virtblk_vq *bvq;
	struct scatterlist *sg_ext;
	u32 data_type;
	unsigned int data_nents;
	unsigned int stages;
	struct virtio_blk_discard_write_zeroes range;
	struct virtblk_cmd cmd;
};

/* virtblk_bio_cmd.stages, issued in this order */
#define VIRTBLK_STAGE_PREFLUSH	BIT(0)
#define VIRTBLK_STAGE_DATA	BIT(1)
#define VIRTBLK_STAGE_POSTFLUSH	BIT(2)

/**
 * struct virtblk_cmd_cache - free bio commands kept by one CPU
 * @lock: serialises the CPU's submissions and completions
 * @free: list through &virtblk_bio_cmd.next_free
 * @nr: commands on @free
 */
struct virtblk_cmd_cache {
	local_lock_t lock;
	struct virtblk_bio_cmd *free;
	unsigned int nr;
};

/**
 * struct virtblk_vq - one virtqueue and the state both paths share on it
 * @vq: the virtqueue; stale from freeze until restore finds it again
 * @lock: serialises adding, reaping and @parked
 * @parked: commands of either path waiting for ring space, oldest first
 * @bio_on_ring: bio commands on the ring, oldest first (the watchdog)
 * @gate: enum virtblk_gate; only the reset work changes it
 * @stopped_hctx: hardware context stopped on a held-back request
 * @rq_queued: requests on the ring or parked
 * @next_sector: where the last request queued here ends
 * @added: commands put on the ring, both paths (debugfs statistics)
 * @notified: notifications sent to the device (debugfs statistics)
 * @parked_total: commands that found the ring full (debugfs statistics)
 * @held_total: requests handed back to blk-mq to merge (debugfs statistics)
 * @nomem_total: adds that failed for want of memory to map the buffers
 *	(debugfs statistics)
 * @plug_cb: defers the notification to the end of a task's plug
 * @plug_owner: task whose plug holds @plug_cb, or NULL
 * @plug_busy: bit 0 set while @plug_cb is on a plug
 * @bio_inflight: bio commands that chose this queue and have not ended
 * @bio_wait: submitters waiting for @bio_inflight to drop below the budget
 * @budget_waits: submitters that had to wait (debugfs statistics)
 * @inactive: the last CPU of the queue's interrupt is going offline: bio
 *	commands go to another queue
 * @cmd_pool: bio command reserve for CPUs mapped to this queue
 * @vblk: owning device
 * @name: virtqueue name
 */
struct virtblk_vq {
	struct virtqueue *vq;
	spinlock_t lock;	/* ring, parked, stopped_hctx, counters */
	struct list_head parked;
	struct list_head bio_on_ring;
	u8 gate;
	struct blk_mq_hw_ctx *stopped_hctx;
	unsigned int rq_queued;
	sector_t next_sector;
	u64 added;
	u64 notified;
	u64 parked_total;
	u64 held_total;
	u64 nomem_total;
	struct blk_plug_cb plug_cb;
	struct task_struct *plug_owner;
	unsigned long plug_busy;
	atomic_t bio_inflight;
	wait_queue_head_t bio_wait;
	u64 budget_waits;
	bool inactive;
	mempool_t *cmd_pool;
	struct virtio_blk *vblk;
	char name[VIRTBLK_VQ_NAME_LEN];
} ____cacheline_aligned_in_smp;

/**
 * struct virtio_blk - one virtio block device
 * @vdev_mutex: held by anything that can run after remove cleared @vdev,
 *	but the broken-ring work (@reset_lock)
 * @vdev: the virtio device, NULL once removed
 * @ref: one reference for the device, one per registered visible disk;
 *	the last put frees the structure
 * @disk: the visible disk (vdX): blk-mq in the plain shape, bio-based in
 *	the bio-capable one; NULL once removed
 * @mq_disk: the blk-mq disk requests go to: @disk itself in the plain
 *	shape, the hidden disk behind it in the bio-capable one
 * @tag_set: tags of @mq_disk
 * @path: enum virtblk_path in effect, read once per bio
 * @policy: enum virtblk_policy last asked for
 * @reason_lock: protects @why
 * @why: what decided @path, in words (io_path_reason)
 * @medium: VIRTIO_BLK_F_BIO negotiated: the device reports its medium
 * @rotation_rate: rotation_rate as last read (under @path_lock once live)
 * @read_latency_hint: read_latency_hint in us as last read, likewise
 * @rebind_noted: a plain disk logged that auto now asks for the bio path
 * @path_lock: serialises writers of @path, @policy and @why, and the
 *	creation and removal of the disks
 * @reshaping: set while a plain disk is re-created bio-capable: no new
 *	opener may get it meanwhile
 * @suspended: the bio path holds new bios on @held_bios (PM freeze)
 * @held_lock: protects @suspended and @held_bios
 * @held_bios: bios that arrived while suspended, resubmitted on restore
 * @config_work: capacity and medium change handling
 * @requeue_work: retries parked commands when no completion is due
 * @broken_work: fails all I/O once a virtqueue is broken
 * @broken: @broken_work reset the device and broke every queue, or a
 *	reset could not bring it back (under @reset_lock)
 * @reset_lock: serialises @reset_work with @broken_work, suspend and the
 *	clearing of @vdev at removal; not @vdev_mutex, which is held across
 *	I/O (zone reports)
 * @reset_work: resets the device after a command timed out
 * @frozen: suspended (PM): no reset until restore (under @reset_lock)
 * @resets: device resets @reset_work did (debugfs statistics)
 * @fail_reinit: re-initialisations after a reset still to fail as if the
 *	device had refused FEATURES_OK (debugfs fault injection, for tests)
 * @io_timeout: time a bio command may take, in jiffies (io_timeout
 *	attribute); the hidden disk's requests get the same
 * @bio_timer: the bio path's watchdog over @virtblk_vq.bio_on_ring
 * @index: ida index (names and minors)
 * @num_vqs: virtqueues in @vqs
 * @io_queues: queues per hctx type
 * @sg_elems: scatterlist entries a command may need
 * @bio_budget: bio commands a queue takes before submitters wait
 * @sg_pool: scatterlist arrays for bio commands above the inline size
 * @cmd_cache: per-CPU caches of free bio commands
 * @debugfs_dir: the device's debugfs directory, or NULL
 * @flush_lock: protects the flush lists and @flush_busy
 * @flush_pending: bio commands at a flush stage, for the next device flush
 * @flush_running: bio commands the device flush in flight serves
 * @flush_busy: a device flush of the bio path is in flight
 * @flush_cmd: that device flush, a bio command without a bio
 * @flush_start: when it was issued (ns), for the flush statistics
 * @flushes: device flushes the bio path issued (debugfs statistics)
 * @flush_stages: flush stages they served (debugfs statistics)
 * @cpuhp_node: on the driver's CPU hotplug state (virtblk_cpu_offline())
 * @zoned: host-managed zoned device: plain shape and request path only
 * @zone_sectors: zone size of a zoned device, a power of two
 * @vqs: the virtqueues
 */
struct virtio_blk {
	struct mutex vdev_mutex;	/* vdev lifetime, see above */
	struct virtio_device *vdev;
	struct kref ref;
	struct gendisk *disk;
	struct gendisk *mq_disk;
	struct blk_mq_tag_set tag_set;

	int path;
	int policy;
	spinlock_t reason_lock;		/* why */
	char why[VIRTBLK_REASON_LEN];
	bool medium;
	u16 rotation_rate;
	u32 read_latency_hint;
	bool rebind_noted;
	struct mutex path_lock;		/* path and disks, see above */
	bool reshaping;

	bool suspended;
	spinlock_t held_lock;		/* suspended, held_bios */
	struct bio_list held_bios;

	struct work_struct config_work;
	struct delayed_work requeue_work;
	struct work_struct broken_work;
	bool broken;
	struct mutex reset_lock;	/* reset vs broken, suspend */
	struct work_struct reset_work;
	bool frozen;
	u64 resets;
	u32 fail_reinit;
	unsigned int io_timeout;
	struct timer_list bio_timer;
	int index;
	unsigned int num_vqs;
	unsigned int io_queues[HCTX_MAX_TYPES];
	unsigned int sg_elems;
	unsigned int bio_budget;
	mempool_t *sg_pool;
	struct virtblk_cmd_cache __percpu *cmd_cache;
	struct dentry *debugfs_dir;
	spinlock_t flush_lock;		/* flush lists, flush_busy */
	struct list_head flush_pending;
	struct list_head flush_running;
	bool flush_busy;
	struct virtblk_bio_cmd *flush_cmd;
	u64 flush_start;
	u64 flushes;
	u64 flush_stages;
	struct hlist_node cpuhp_node;
	bool zoned;
	u32 zone_sectors;
	struct virtblk_vq *vqs;
};

/*
 * Whether the device has the plain shape: its visible disk is the blk-mq
 * disk itself, and it stays on the request path.
 */
static inline bool virtblk_plain(const struct virtio_blk *vblk)
{
	return vblk->disk == vblk->mq_disk;
}

/* main.c */
extern int virtblk_io_path_param;
extern unsigned int virtblk_bio_latency_us;
extern struct kmem_cache *virtblk_bio_cmd_cache;
extern struct workqueue_struct *virtblk_reset_wq;
void virtblk_update_cache_mode(struct virtio_blk *vblk);
bool virtblk_get_cache_mode(struct virtio_device *vdev);
int virtblk_reshape(struct virtio_blk *vblk, int policy);

/* core.c */
blk_status_t virtblk_result(u8 status);
void virtblk_init_cmd(struct virtblk_cmd *cmd);
enum virtblk_queued virtblk_queue_cmd(struct virtblk_vq *bvq,
				      struct virtblk_cmd *cmd);
bool virtblk_space_freed(struct virtblk_vq *bvq);
void virtblk_requeue_work(struct work_struct *work);
void virtblk_broken_work(struct work_struct *work);
void virtblk_fail_cmd(struct virtblk_cmd *cmd);
void virtblk_schedule_reset(struct virtio_blk *vblk);
void virtblk_bio_timer(struct timer_list *t);
void virtblk_reset_stop(struct virtblk_vq *bvq);
void virtblk_reset_collect(struct virtblk_vq *bvq, struct list_head *failed);
void virtblk_reset_restart(struct virtblk_vq *bvq, bool dead);
bool virtblk_kick_prepare(struct virtblk_vq *bvq);
void virtblk_submit_unlock(struct virtblk_vq *bvq, unsigned long flags,
			   bool kick) __releases(&bvq->lock);
void virtblk_kick(struct virtblk_vq *bvq);
void virtblk_done(struct virtqueue *vq);
unsigned int virtblk_cpu_to_queue(struct virtio_blk *vblk);

/* bio.c */
void virtblk_submit_bio(struct bio *bio);
void virtblk_bio_complete(struct virtblk_bio_cmd *bc);
int virtblk_bio_init(struct virtio_blk *vblk);
void virtblk_bio_exit(struct virtio_blk *vblk);
void virtblk_bio_suspend(struct virtio_blk *vblk);
int virtblk_cpu_offline(unsigned int cpu, struct hlist_node *node);
int virtblk_cpu_online(unsigned int cpu, struct hlist_node *node);
void virtblk_bio_resume(struct virtio_blk *vblk);

/* mq.c */
int virtblk_mq_init(struct virtio_blk *vblk, unsigned int queue_depth);
int virtblk_drv_in(struct virtio_blk *vblk, u32 type, sector_t sector,
		   void *buf, unsigned int len);

/* sysfs.c */
extern const struct attribute_group *virtblk_attr_groups[];
extern const struct attribute_group *virtblk_vdev_attr_groups[];
int virtblk_parse_policy(const char *buf);
const char *virtblk_policy_name(int policy);
const char *virtblk_path_name(int path);
int virtblk_medium_path(bool medium, u16 rotation_rate, u32 latency_us,
			char *why, size_t len);
void virtblk_select_path(struct virtio_blk *vblk, int policy, bool by_user);
void virtblk_set_why(struct virtio_blk *vblk, const char *why);
ssize_t virtblk_reason_show(struct virtio_blk *vblk, char *buf);

/* zoned.c */
#ifdef CONFIG_BLK_DEV_ZONED
int virtblk_read_zoned_limits(struct virtio_blk *vblk,
			      struct queue_limits *lim);
int virtblk_report_zones(struct gendisk *disk, sector_t sector,
			 unsigned int nr_zones, report_zones_cb cb, void *data);
#else
#define virtblk_report_zones	NULL
static inline int virtblk_read_zoned_limits(struct virtio_blk *vblk,
					    struct queue_limits *lim)
{
	dev_err(&vblk->vdev->dev,
		"host-managed zoned device, but the kernel has no CONFIG_BLK_DEV_ZONED\n");
	return -EOPNOTSUPP;
}
#endif

/* debugfs.c */
void virtblk_debugfs_init(void);
void virtblk_debugfs_exit(void);
void virtblk_debugfs_add(struct virtio_blk *vblk);
void virtblk_debugfs_remove(struct virtio_blk *vblk);

#endif /* _VIRTIO_BLK_ADAPTIVE_H */
