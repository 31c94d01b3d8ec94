// SPDX-License-Identifier: GPL-2.0
/*
 * Reads with RWF_NOWAIT (bios with REQ_NOWAIT) on a disk whose queue is
 * full, on each I/O path of the adaptive virtio_blk (one fixture variant
 * per path):
 *
 * - full: LOAD threads, all on CPU 0 (so on one queue), keep more reads in
 *   flight than the queue takes: on the bio path its budget of bio
 *   commands (debugfs "budget"), on the request path the blk-mq disk's
 *   nr_requests.  Meanwhile RWF_NOWAIT reads are tried from CPU 0 (for 20
 *   s at most).  On the bio path they must fail with EAGAIN instead of
 *   sleeping, and the readers beyond the budget sleep, which debugfs
 *   counts ("waits").  On the request path blk-mq decides, as under the
 *   in-tree driver: a read fails with EAGAIN only when no tag is free at
 *   that moment, and tags freed by completions stay free until enough
 *   have gathered to wake a batch of the sleeping readers, so a read may
 *   as well succeed; what must hold is that the remap to the blk-mq disk
 *   keeps RWF_NOWAIT working (no EOPNOTSUPP).  On both paths no read may
 *   fail with any other error, and once the load is gone a RWF_NOWAIT
 *   read succeeds.
 *
 * The disk: the first bio-capable null-co disk (it reads zeroes), attached
 * with a latency (latency-ns) so that reads stay in flight, and a small
 * ring (dev.queue-size=16) so that few threads fill it.  Its absence is a
 * failure, not a skip.
 *
 * RWF_NOWAIT reads on a full queue get EAGAIN on both paths: a null-co
 * disk whose reads take 20 ms and a ring of 16 (budget and nr_requests
 * of a few dozen), filled from one CPU.
 * vmtest guest ours-nowait --driver ours
 * vmtest disk nw null size=64M latency-ns=20000000 dev.queue-size=16 \
 *     dev.num-queues=1 dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define BLK		4096
#define MAX_LOAD	1024	/* threads; a deeper queue needs a smaller ring */
#define TRY_SECS	20

/* The hidden blk-mq disk beside @vd (the other disk of its device). */
static int hidden_of(const char *vd, char *out, size_t len)
{
	char path[340];
	struct dirent *e;
	int ret = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/block/%s/device/block", vd);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, vd))
			continue;
		snprintf(out, len, "%s", e->d_name);
		ret = 0;
		break;
	}
	closedir(d);
	return ret;
}

/* Sum of COUNTER over the queues of debugfs file @path, or -1. */
static long long qstat(const char *path, const char *counter)
{
	char line[512], *tok, *save;
	long long sum = 0;
	int found = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		strtok_r(line, " \n", &save);	/* the queue's name */
		while ((tok = strtok_r(NULL, " \n", &save))) {
			char *val = strtok_r(NULL, " \n", &save);

			if (val && !strcmp(tok, counter)) {
				sum += strtoll(val, NULL, 10);
				found = 1;
			}
		}
	}
	fclose(f);
	return found ? sum : -1;
}

struct load {
	pthread_t thread;
	int fd;
	off_t off;
	atomic_int *stop;
	int err;		/* errno of the first failed read */
	long reads;
};

static void *load_fn(void *arg)
{
	struct load *l = arg;
	void *buf;

	if (posix_memalign(&buf, BLK, BLK)) {
		l->err = ENOMEM;
		return NULL;
	}
	while (!atomic_load(l->stop)) {
		if (pread(l->fd, buf, BLK, l->off) != BLK) {
			l->err = errno ? errno : EIO;
			break;
		}
		l->reads++;
	}
	free(buf);
	return NULL;
}

FIXTURE(nowait) {
	char vd[300];
	char queues[400];
	unsigned int limit;
	unsigned long long bytes;
	int fd;
};

FIXTURE_VARIANT(nowait) {
	const char *path;
	bool refuses;		/* a full queue always refuses RWF_NOWAIT */
};

FIXTURE_VARIANT_ADD(nowait, bio) {
	.path = "bio",
	.refuses = true,
};

FIXTURE_VARIANT_ADD(nowait, request) {
	.path = "request",
	.refuses = false,
};

FIXTURE_SETUP(nowait)
{
	struct vblk_disk disks[VBLK_MAX_DISKS];
	char attr[600], val[64], hidden[256];
	cpu_set_t cpu0;
	int i, n;

	self->fd = -1;
	n = vblk_disks(disks, VBLK_MAX_DISKS);
	ASSERT_GT(n, 0) TH_LOG("VBLK_DISK_INFO names no usable disk");
	for (i = 0; i < n; i++) {
		const char *vd = disks[i].dev + strlen("/dev/");

		if (!vblk_disk_keeps_data(&disks[i]) &&
		    !hidden_of(vd, hidden, sizeof(hidden)))
			break;
	}
	ASSERT_LT(i, n) TH_LOG("no bio-capable null-co disk (attach one with latency-ns, dev.bio=on and a fast medium)");
	snprintf(self->vd, sizeof(self->vd), "%s", disks[i].dev + strlen("/dev/"));
	self->bytes = disks[i].bytes;

	snprintf(attr, sizeof(attr), "/sys/block/%s/io_path", self->vd);
	ASSERT_EQ(0, vblk_write_str(attr, variant->path));
	ASSERT_EQ(0, vblk_read_line(attr, val, sizeof(val)));
	ASSERT_STREQ(variant->path, val);

	if (access("/sys/kernel/debug/virtio_blk", F_OK))
		mount("none", "/sys/kernel/debug", "debugfs", 0, NULL);
	snprintf(self->queues, sizeof(self->queues),
		 "/sys/kernel/debug/virtio_blk/%s/queues", self->vd);
	if (!strcmp(variant->path, "bio")) {
		long long budget = -1;
		FILE *f = fopen(self->queues, "r");

		ASSERT_NE(NULL, f) TH_LOG("no %s", self->queues);
		/* The first queue's; they all have the same. */
		if (fgets(attr, sizeof(attr), f)) {
			char *p = strstr(attr, " budget ");

			if (p)
				budget = strtoll(p + strlen(" budget "), NULL, 10);
		}
		fclose(f);
		ASSERT_GT(budget, 0) TH_LOG("no budget in %s", self->queues);
		self->limit = (unsigned int)budget;
	} else {
		snprintf(attr, sizeof(attr), "/sys/block/%s/queue/nr_requests", hidden);
		ASSERT_EQ(0, vblk_read_line(attr, val, sizeof(val)));
		self->limit = (unsigned int)strtoul(val, NULL, 10);
		ASSERT_GT(self->limit, 0);
	}
	ASSERT_LE(2 * self->limit + 16, MAX_LOAD)
		TH_LOG("%s takes %u at once: too deep for %d threads (attach it with dev.queue-size=16)",
		       self->vd, self->limit, MAX_LOAD);
	ASSERT_LE((unsigned long long)(2 * self->limit + 17) * BLK, self->bytes);

	/* The readers inherit this: one CPU, one queue. */
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpu0), &cpu0));

	self->fd = open(disks[i].dev, O_RDONLY | O_DIRECT);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", disks[i].dev, strerror(errno));
}

FIXTURE_TEARDOWN(nowait)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F_TIMEOUT(nowait, full, 90)
{
	unsigned int nload = 2 * self->limit + 16, i;
	long tries = 0, again = 0, ok = 0, reads = 0;
	long long waits0 = 0, waits1 = 0;
	struct timespec start, now;
	int other = 0, load_err = 0;
	pthread_attr_t attr;
	struct load *load;
	atomic_int stop = 0;
	struct iovec iov;
	void *buf;
	ssize_t r;

	ASSERT_EQ(0, posix_memalign(&buf, BLK, BLK));
	iov.iov_base = buf;
	iov.iov_len = BLK;
	load = calloc(nload, sizeof(*load));
	ASSERT_NE(NULL, load);
	if (!strcmp(variant->path, "bio"))
		waits0 = qstat(self->queues, "waits");

	ASSERT_EQ(0, pthread_attr_init(&attr));
	ASSERT_EQ(0, pthread_attr_setstacksize(&attr, 64 << 10));
	for (i = 0; i < nload; i++) {
		load[i].fd = self->fd;
		load[i].off = (off_t)(i + 1) * BLK;
		load[i].stop = &stop;
		ASSERT_EQ(0, pthread_create(&load[i].thread, &attr, load_fn, &load[i]));
	}

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		tries++;
		r = preadv2(self->fd, &iov, 1, 0, RWF_NOWAIT);
		if (r == BLK) {
			ok++;
		} else if (r < 0 && errno == EAGAIN) {
			again++;
		} else {
			other = r < 0 ? errno : EIO;
			break;
		}
		usleep(1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (again < 10 && now.tv_sec - start.tv_sec < TRY_SECS &&
		 (variant->refuses || tries < 50));

	atomic_store(&stop, 1);
	for (i = 0; i < nload; i++) {
		pthread_join(load[i].thread, NULL);
		reads += load[i].reads;
		if (load[i].err && !load_err)
			load_err = load[i].err;
	}
	if (!strcmp(variant->path, "bio"))
		waits1 = qstat(self->queues, "waits");
	free(load);

	TH_LOG("%s %s: %u readers over a limit of %u; RWF_NOWAIT: %ld tries, %ld EAGAIN, %ld read; %ld reads by the readers, %lld budget waits",
	       self->vd, variant->path, nload, self->limit, tries, again, ok,
	       reads, waits1 - waits0);
	ASSERT_EQ(0, other) TH_LOG("RWF_NOWAIT read failed: %s", strerror(other));
	ASSERT_EQ(0, load_err) TH_LOG("a reader failed: %s", strerror(load_err));
	if (variant->refuses) {
		ASSERT_GT(again, 0) TH_LOG("no EAGAIN in %d s with the queue full", TRY_SECS);
		ASSERT_GT(waits1, waits0) TH_LOG("no reader waited for the budget");
	}

	/* Nothing in flight now: no reason to refuse. */
	r = preadv2(self->fd, &iov, 1, 0, RWF_NOWAIT);
	ASSERT_EQ(BLK, r) TH_LOG("RWF_NOWAIT read on an idle disk: %s",
				 r < 0 ? strerror(errno) : "short");
	free(buf);
}

TEST_HARNESS_MAIN
