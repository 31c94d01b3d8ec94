// SPDX-License-Identifier: GPL-2.0
/*
 * Discard, write-zeroes and secure erase on each I/O path of the adaptive
 * virtio_blk (one fixture variant per path):
 *
 * - write_zeroes: BLKZEROOUT of an unaligned-to-the-pattern range reads
 *   back as zeroes, and the data around it is intact.
 * - discard: BLKDISCARD succeeds; the range reads back as zeroes when the
 *   disk says expect.discard=zeroes (attach it with blk.discard=unmap so
 *   its backend punches holes), otherwise as zeroes or as the old data,
 *   never anything else.  A disk with expect.discard (zeroes or any) must
 *   offer discard.
 * - secure_erase: BLKSECDISCARD succeeds and the range reads back as
 *   zeroes (what the vhost-user test back end does), or fails with
 *   EOPNOTSUPP when the device does not offer it, which is a failure when
 *   the disk says expect.secure-erase=1.
 *
 * The disk under test is the one with role=discard, else the first disk
 * that keeps its data.
 *
 * vmtest guest ours-discard --driver ours
 * vmtest disk d1 ram size=64M dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
 * vmtest disk disc file size=64M blk.discard=unmap dev.bio=off role=discard \
 *     expect.discard=zeroes
 *
 * Secure erase (which QEMU's virtio-blk does not offer) on both paths,
 * from the vhost-user test back end, with one-range discard and
 * write-zeroes limits and the accounting of all three.
 * vmtest guest vhost-secure-erase --driver ours
 * vmtest disk se vhost size=32M dev.x-secure-erase=on role=discard \
 *     expect.secure-erase=1 expect.discard=zeroes \
 *     cfg.max_secure_erase_sectors=65536 cfg.max_secure_erase_seg=1 \
 *     cfg.secure_erase_sector_alignment=8 cfg.max_discard_sectors=65536 \
 *     cfg.max_discard_seg=1 cfg.max_write_zeroes_sectors=65536 \
 *     cfg.max_write_zeroes_seg=1
 * vmtest run vblk_stat.sh
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define AREA	(4U << 20)	/* bytes written around each operation */
#define OP_OFF	(64U << 10)	/* operation range within the area */
#define OP_LEN	(1U << 20)

FIXTURE(disk) {
	struct vblk_disk disk;
	char sys[300];
	void *buf;
	uint64_t seed;
	int fd;
};

FIXTURE_VARIANT(disk) {
	const char *path;
};

FIXTURE_VARIANT_ADD(disk, bio) {
	.path = "bio",
};

FIXTURE_VARIANT_ADD(disk, request) {
	.path = "request",
};

FIXTURE_SETUP(disk)
{
	struct vblk_disk disks[VBLK_MAX_DISKS];
	char attr[340], val[64];
	int i, n;

	n = vblk_disks(disks, VBLK_MAX_DISKS);
	ASSERT_GT(n, 0) TH_LOG("VBLK_DISK_INFO names no usable disk");
	for (i = 0; i < n; i++)
		if (vblk_disk_keeps_data(&disks[i]) &&
		    vblk_disk_has_role(disks[i].name, "discard"))
			break;
	if (i == n)
		for (i = 0; i < n; i++)
			if (vblk_disk_keeps_data(&disks[i]))
				break;
	if (i == n)
		SKIP(return, "no disk that keeps data");
	self->disk = disks[i];
	if (self->disk.bytes < AREA)
		SKIP(return, "disk smaller than %u bytes", AREA);

	snprintf(self->sys, sizeof(self->sys), "/sys/block/%s",
		 self->disk.dev + strlen("/dev/"));
	snprintf(attr, sizeof(attr), "%s/io_path", self->sys);
	if (access(attr, W_OK))
		SKIP(return, "no io_path attribute: not the adaptive driver");
	ASSERT_EQ(0, vblk_write_str(attr, variant->path));
	ASSERT_EQ(0, vblk_read_line(attr, val, sizeof(val)));
	ASSERT_STREQ(variant->path, val);

	ASSERT_EQ(0, posix_memalign(&self->buf, 4096, AREA));
	self->fd = open(self->disk.dev, O_RDWR | O_DIRECT);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", self->disk.dev,
				      strerror(errno));

	self->seed = (uint64_t)time(NULL);
	vblk_fill(self->buf, AREA, 0, self->seed);
	ASSERT_EQ((ssize_t)AREA, pwrite(self->fd, self->buf, AREA, 0));
	ASSERT_EQ(0, fdatasync(self->fd));
}

FIXTURE_TEARDOWN(disk)
{
	if (self->fd > 0)
		close(self->fd);
	free(self->buf);
}

static int is_zero(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Outside the range: the pattern.  Inside: zeroes, or the pattern too. */
static int check_area(void *buf, uint64_t seed, int may_keep)
{
	unsigned char *b = buf;
	size_t blk;

	if (vblk_check(b, OP_OFF, 0, seed) != -1)
		return -1;
	if (vblk_check(b + OP_OFF + OP_LEN, AREA - OP_OFF - OP_LEN,
		       OP_OFF + OP_LEN, seed) != -1)
		return -1;
	for (blk = OP_OFF; blk < OP_OFF + OP_LEN; blk += 512) {
		if (is_zero(b + blk, 512))
			continue;
		if (!may_keep || vblk_check(b + blk, 512, blk, seed) != -1)
			return (int)(blk / 512) + 1;
	}
	return 0;
}

TEST_F(disk, write_zeroes)
{
	uint64_t range[2] = { OP_OFF, OP_LEN };

	ASSERT_EQ(0, ioctl(self->fd, BLKZEROOUT, range))
		TH_LOG("BLKZEROOUT: %s", strerror(errno));
	ASSERT_EQ((ssize_t)AREA, pread(self->fd, self->buf, AREA, 0));
	ASSERT_EQ(0, check_area(self->buf, self->seed, 0));
}

TEST_F(disk, discard)
{
	uint64_t range[2] = { OP_OFF, OP_LEN };
	char attr[340], val[64], expect[16] = "";

	vblk_disk_expect(self->disk.name, "discard", expect, sizeof(expect));
	snprintf(attr, sizeof(attr), "%s/queue/discard_max_bytes", self->sys);
	ASSERT_EQ(0, vblk_read_line(attr, val, sizeof(val)));
	if (!strcmp(val, "0")) {
		ASSERT_NE(0, ioctl(self->fd, BLKDISCARD, range));
		ASSERT_STREQ("", expect)
			TH_LOG("%s says expect.discard=%s, offers no discard",
			       self->disk.name, expect);
		SKIP(return, "device does not offer discard");
	}
	ASSERT_EQ(0, ioctl(self->fd, BLKDISCARD, range))
		TH_LOG("BLKDISCARD: %s", strerror(errno));
	ASSERT_EQ((ssize_t)AREA, pread(self->fd, self->buf, AREA, 0));
	ASSERT_EQ(0, check_area(self->buf, self->seed,
				strcmp(expect, "zeroes") != 0));
}

TEST_F(disk, secure_erase)
{
	uint64_t range[2] = { OP_OFF, OP_LEN };
	char expect[8] = "";

	if (ioctl(self->fd, BLKSECDISCARD, range)) {
		ASSERT_EQ(EOPNOTSUPP, errno) TH_LOG("BLKSECDISCARD: %s",
						   strerror(errno));
		vblk_disk_expect(self->disk.name, "secure-erase", expect,
				 sizeof(expect));
		ASSERT_STRNE("1", expect)
			TH_LOG("the device offers secure erase, the disk refuses it");
		SKIP(return, "device does not offer secure erase");
	}
	ASSERT_EQ((ssize_t)AREA, pread(self->fd, self->buf, AREA, 0));
	ASSERT_EQ(0, check_area(self->buf, self->seed, 1));
}

TEST_HARNESS_MAIN
