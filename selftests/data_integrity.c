// SPDX-License-Identifier: GPL-2.0
/*
 * Data integrity on every data disk of the run: write a pattern that
 * encodes each byte's offset, flush, read it back and compare.
 *
 * - direct_mixed: O_DIRECT I/O of mixed sizes, from one logical block up
 *   to 4 MiB (larger than any virtio-blk device's segment limits, so the
 *   block layer or the driver must split it), at scattered offsets;
 *   fdatasync; read back with O_DIRECT in different chunk sizes.
 * - buffered_flush: page-cache writes, fsync, drop the page cache
 *   (BLKFLSBUF) so the read-back really comes from the device.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define AREA		(32ULL << 20)	/* bytes of each disk the test uses */
#define MAX_IO		(4U << 20)

static const unsigned int io_sizes[] = {
	1, 8, 3, 64, 256, 17, 1024, 2048, 5, 4096 / 512 * 2, 8192
};	/* in logical blocks, for the direct test */

FIXTURE(disks) {
	struct vblk_disk disk[VBLK_MAX_DISKS];
	int n;
	void *wbuf, *rbuf;
};

FIXTURE_SETUP(disks)
{
	self->n = vblk_disks(self->disk, VBLK_MAX_DISKS);
	ASSERT_GT(self->n, 0) TH_LOG("VBLK_DISK_INFO names no usable disk");
	ASSERT_EQ(0, posix_memalign(&self->wbuf, 4096, MAX_IO));
	ASSERT_EQ(0, posix_memalign(&self->rbuf, 4096, MAX_IO));
}

FIXTURE_TEARDOWN(disks)
{
	free(self->wbuf);
	free(self->rbuf);
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t r = pwrite(fd, buf, len, off);

	return r == (ssize_t)len ? 0 : -1;
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	ssize_t r = pread(fd, buf, len, off);

	return r == (ssize_t)len ? 0 : -1;
}

TEST_F(disks, direct_mixed)
{
	int i, tested = 0;

	for (i = 0; i < self->n; i++) {
		struct vblk_disk *d = &self->disk[i];
		unsigned long long area = d->bytes < AREA ? d->bytes : AREA;
		unsigned long long off, len;
		uint64_t seed = (uint64_t)time(NULL) + i;
		unsigned int k = 0;
		int lbs, fd;

		if (!vblk_disk_keeps_data(d))
			continue;
		fd = open(d->dev, O_RDWR | O_DIRECT);
		ASSERT_LE(0, fd) TH_LOG("open %s: %s", d->dev, strerror(errno));
		ASSERT_EQ(0, ioctl(fd, BLKSSZGET, &lbs));

		/* Consecutive extents of varying size tile the area. */
		for (off = 0; off < area; off += len) {
			len = (unsigned long long)io_sizes[k++ % ARRAY_SIZE(io_sizes)] * lbs;
			if (k % 7 == 0 || len > MAX_IO)
				len = MAX_IO;
			if (off + len > area)
				len = area - off;
			vblk_fill(self->wbuf, len, off, seed);
			ASSERT_EQ(0, pwrite_all(fd, self->wbuf, len, off))
				TH_LOG("%s: write %llu@%llu: %s", d->name, len, off,
				       strerror(errno));
		}
		ASSERT_EQ(0, fdatasync(fd)) TH_LOG("%s: flush: %s", d->name, strerror(errno));

		/* Read back in a chunking unrelated to the writes. */
		for (off = 0; off < area; off += len) {
			long long bad;

			len = (k++ % 2) ? MAX_IO : 3ULL * lbs;
			if (off + len > area)
				len = area - off;
			ASSERT_EQ(0, pread_all(fd, self->rbuf, len, off))
				TH_LOG("%s: read %llu@%llu: %s", d->name, len, off,
				       strerror(errno));
			bad = vblk_check(self->rbuf, len, off, seed);
			ASSERT_EQ(-1, bad) TH_LOG("%s: mismatch at byte %llu", d->name,
						  off + bad);
		}
		close(fd);
		TH_LOG("%s (%s, %s): %llu MiB verified", d->name, d->cls, d->dev, area >> 20);
		tested++;
	}
	ASSERT_GT(tested, 0) TH_LOG("no disk that keeps data");
}

TEST_F(disks, buffered_flush)
{
	int i, tested = 0;

	for (i = 0; i < self->n; i++) {
		struct vblk_disk *d = &self->disk[i];
		unsigned long long area = d->bytes < AREA / 2 ? d->bytes : AREA / 2;
		uint64_t seed = (uint64_t)time(NULL) * 7 + i;
		unsigned long long off;
		int fd;

		if (!vblk_disk_keeps_data(d))
			continue;
		fd = open(d->dev, O_RDWR);
		ASSERT_LE(0, fd);
		for (off = 0; off < area; off += MAX_IO) {
			vblk_fill(self->wbuf, MAX_IO, off, seed);
			ASSERT_EQ(0, pwrite_all(fd, self->wbuf, MAX_IO, off));
		}
		ASSERT_EQ(0, fsync(fd)) TH_LOG("%s: fsync: %s", d->name, strerror(errno));
		ASSERT_EQ(0, ioctl(fd, BLKFLSBUF, 0));
		for (off = 0; off < area; off += MAX_IO) {
			long long bad;

			ASSERT_EQ(0, pread_all(fd, self->rbuf, MAX_IO, off));
			bad = vblk_check(self->rbuf, MAX_IO, off, seed);
			ASSERT_EQ(-1, bad) TH_LOG("%s: mismatch at byte %llu", d->name,
						  off + bad);
		}
		close(fd);
		tested++;
	}
	ASSERT_GT(tested, 0) TH_LOG("no disk that keeps data");
}

TEST_HARNESS_MAIN
