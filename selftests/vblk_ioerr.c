// SPDX-License-Identifier: GPL-2.0
/*
 * I/O errors from the host reach the caller, on every path: QEMU's
 * blkdebug (the err.* disk keys) fails every read or write covering one
 * sector, or only the first one.  On each disk with role=errors, on each
 * path it runs (both on a bio-capable disk, the request path on a plain
 * one, whatever the in-tree driver does under it):
 *
 * - read_errors: a direct read covering the failing sector gets EIO, 100
 *   times in a row; the reads around it succeed.
 * - write_errors: a direct write there gets EIO; a buffered one is
 *   reported by fsync(); the writes around it read back.
 * - once_errors: the first read (write) of a sector that fails once gets
 *   EIO and the second one succeeds.
 *
 * Nothing may hang (each test is bounded by the harness's timeout), the
 * driver itself logs nothing per failed I/O (the block layer's messages
 * are its own, rate-limited), and the disk works afterwards.
 *
 * The sectors come from the disk's expect.read-error, expect.write-error,
 * expect.read-once and expect.write-once keys (one sector per path for
 * the -once ones, in the order bio, request), which repeat its err.* keys.
 *
 * vmtest guest stock-ioerr --driver stock
 * vmtest disk e ram size=64M role=errors err.read=65536 err.write=65600 \
 *     err.read-once=40000+40100 err.write-once=40200+40300 \
 *     expect.read-error=65536 expect.write-error=65600 \
 *     expect.read-once=40000+40100 expect.write-once=40200+40300
 * vmtest guest ours-ioerr --driver ours
 * vmtest disk capable ram size=64M dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45 role=errors err.read=65536 \
 *     err.write=65600 err.read-once=40000+40100 err.write-once=40200+40300 \
 *     expect.read-error=65536 expect.write-error=65600 \
 *     expect.read-once=40000+40100 expect.write-once=40200+40300
 * vmtest disk plain ram size=64M dev.bio=off role=errors err.read=65536 \
 *     err.write=65600 err.read-once=40000+40100 err.write-once=40200+40300 \
 *     expect.read-error=65536 expect.write-error=65600 \
 *     expect.read-once=40000+40100 expect.write-once=40200+40300
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define BLK		4096U
#define REPEAT		100

FIXTURE(errors) {
	struct vblk_disk disks[VBLK_MAX_DISKS];
	int n;
	void *buf;
};

FIXTURE_SETUP(errors)
{
	struct vblk_disk all[VBLK_MAX_DISKS];
	int i, n;

	n = vblk_disks(all, VBLK_MAX_DISKS);
	ASSERT_GT(n, 0) TH_LOG("VBLK_DISK_INFO names no usable disk");
	self->n = 0;
	for (i = 0; i < n; i++)
		if (vblk_disk_has_role(all[i].name, "errors"))
			self->disks[self->n++] = all[i];
	ASSERT_GT(self->n, 0) TH_LOG("no disk with role=errors");
	ASSERT_EQ(0, posix_memalign(&self->buf, BLK, BLK));
}

FIXTURE_TEARDOWN(errors)
{
	free(self->buf);
}

/* Lines of the kernel log that the driver wrote ("virtio_blk virtioN:"). */
static int driver_lines(void)
{
	char rec[2048];
	ssize_t len;
	int fd, count = 0;

	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	for (;;) {
		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)	/* overwritten record */
			continue;
		if (len <= 0)
			break;
		rec[len] = '\0';
		if (strstr(rec, "virtio_blk virtio"))
			count++;
	}
	close(fd);
	return count;
}

/*
 * The paths disk @d runs: both on a bio-capable disk (its virtio device
 * has a hidden disk beside it), the request path on a plain one, "" (the
 * one there is) under the in-tree driver.
 */
static int disk_paths(const struct vblk_disk *d, const char **paths)
{
	char attr[340];
	struct dirent *e;
	DIR *dir;
	int disks = 0;

	snprintf(attr, sizeof(attr), "/sys/block/%s/io_path", d->dev + 5);
	if (access(attr, W_OK)) {
		paths[0] = "";
		return 1;
	}
	snprintf(attr, sizeof(attr), "/sys/block/%s/device/block", d->dev + 5);
	dir = opendir(attr);
	if (!dir)
		return 0;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			disks++;
	closedir(dir);
	paths[0] = disks > 1 ? "bio" : "request";
	paths[1] = "request";
	return disks > 1 ? 2 : 1;
}

/* Put disk @d on @path ("" leaves it); returns 0 on success. */
static int set_path(const struct vblk_disk *d, const char *path)
{
	char attr[340], val[32];

	if (!*path)
		return 0;
	snprintf(attr, sizeof(attr), "/sys/block/%s/io_path", d->dev + 5);
	if (vblk_write_str(attr, path) || vblk_read_line(attr, val, sizeof(val)))
		return -1;
	return strcmp(val, path) ? -1 : 0;
}

/* The @index-th sector of disk @d's expect.@key list, or -1. */
static long long sector(const struct vblk_disk *d, const char *key, int index)
{
	char val[128], *p = val;

	if (vblk_disk_expect(d->name, key, val, sizeof(val)))
		return -1;
	while (index-- > 0) {
		p = strchr(p, '+');
		if (!p)
			return -1;
		p++;
	}
	return strtoll(p, NULL, 10);
}

/* The 4 KiB block that covers @sect. */
static off_t block_of(long long sect)
{
	return (off_t)(sect * 512) / BLK * BLK;
}

/* One direct I/O of a block at @off: 0, or the errno it failed with. */
static int io(int fd, void *buf, off_t off, int write)
{
	ssize_t n = write ? pwrite(fd, buf, BLK, off) : pread(fd, buf, BLK, off);

	if (n == (ssize_t)BLK)
		return 0;
	return n < 0 ? errno : EIO + 1000;	/* short: neither */
}

/*
 * The disk works: a block written away from the failing sectors, and
 * flushed, reads back.  A new open file: one open when a buffered write
 * failed reports that error once more on its next fsync().
 */
static int still_works(const char *dev, void *buf, uint64_t seed)
{
	int fd = open(dev, O_RDWR | O_DIRECT), ret = -1;

	if (fd < 0)
		return -1;
	vblk_fill(buf, BLK, 0, seed);
	if (io(fd, buf, 8 * BLK, 1) || fdatasync(fd))
		goto out;
	memset(buf, 0, BLK);
	if (io(fd, buf, 8 * BLK, 0))
		goto out;
	ret = vblk_check(buf, BLK, 0, seed) == -1 ? 0 : -1;
out:
	close(fd);
	return ret;
}

TEST_F_TIMEOUT(errors, read_errors, 300)
{
	int i, j, k, np, fd, before;
	const char *paths[2];

	for (i = 0; i < self->n; i++) {
		const struct vblk_disk *d = &self->disks[i];
		long long s = sector(d, "read-error", 0);

		ASSERT_LE(0, s) TH_LOG("%s: no expect.read-error", d->name);
		np = disk_paths(d, paths);
		ASSERT_GT(np, 0);
		for (j = 0; j < np; j++) {
			ASSERT_EQ(0, set_path(d, paths[j]));
			fd = open(d->dev, O_RDWR | O_DIRECT);
			ASSERT_LE(0, fd) TH_LOG("open %s: %s", d->dev, strerror(errno));
			before = driver_lines();
			/* Braces: ASSERT_*'s handler is a second statement. */
			for (k = 0; k < REPEAT; k++) {
				ASSERT_EQ(EIO, io(fd, self->buf, block_of(s), 0))
					TH_LOG("%s %s: read %d of sector %lld",
					       d->name, paths[j], k, s);
			}
			ASSERT_EQ(0, io(fd, self->buf, block_of(s) - BLK, 0));
			ASSERT_EQ(0, io(fd, self->buf, block_of(s) + BLK, 0));
			ASSERT_EQ(before, driver_lines())
				TH_LOG("%s %s: the driver logged failed reads",
				       d->name, paths[j]);
			ASSERT_EQ(0, still_works(d->dev, self->buf, s + j));
			close(fd);
			TH_LOG("%s %s: %d reads of sector %lld got EIO, the disk works",
			       d->name, *paths[j] ? paths[j] : "(in-tree)", REPEAT, s);
		}
	}
}

TEST_F_TIMEOUT(errors, write_errors, 300)
{
	int i, j, np, fd, bfd, before;
	const char *paths[2];

	for (i = 0; i < self->n; i++) {
		const struct vblk_disk *d = &self->disks[i];
		long long s = sector(d, "write-error", 0);

		ASSERT_LE(0, s) TH_LOG("%s: no expect.write-error", d->name);
		np = disk_paths(d, paths);
		ASSERT_GT(np, 0);
		for (j = 0; j < np; j++) {
			ASSERT_EQ(0, set_path(d, paths[j]));
			fd = open(d->dev, O_RDWR | O_DIRECT);
			ASSERT_LE(0, fd) TH_LOG("open %s: %s", d->dev, strerror(errno));
			before = driver_lines();
			memset(self->buf, 0x5a, BLK);
			ASSERT_EQ(EIO, io(fd, self->buf, block_of(s), 1))
				TH_LOG("%s %s: direct write of sector %lld",
				       d->name, paths[j], s);

			/* Buffered: the error comes back from fsync(). */
			bfd = open(d->dev, O_RDWR);
			ASSERT_LE(0, bfd);
			ASSERT_EQ((ssize_t)BLK, pwrite(bfd, self->buf, BLK, block_of(s)));
			ASSERT_EQ(-1, fsync(bfd)) TH_LOG("%s %s: fsync after a failed write succeeded",
							 d->name, paths[j]);
			ASSERT_EQ(EIO, errno);
			close(bfd);

			ASSERT_EQ(before, driver_lines())
				TH_LOG("%s %s: the driver logged failed writes",
				       d->name, paths[j]);
			ASSERT_EQ(0, still_works(d->dev, self->buf, s + j));
			close(fd);
			TH_LOG("%s %s: direct and buffered writes of sector %lld got EIO",
			       d->name, *paths[j] ? paths[j] : "(in-tree)", s);
		}
	}
}

TEST_F_TIMEOUT(errors, once_errors, 300)
{
	int i, j, np, fd;
	const char *paths[2];

	for (i = 0; i < self->n; i++) {
		const struct vblk_disk *d = &self->disks[i];

		np = disk_paths(d, paths);
		ASSERT_GT(np, 0);
		for (j = 0; j < np; j++) {
			long long r = sector(d, "read-once", j);
			long long w = sector(d, "write-once", j);

			ASSERT_LE(0, r) TH_LOG("%s: no read-once sector %d", d->name, j);
			ASSERT_LE(0, w) TH_LOG("%s: no write-once sector %d", d->name, j);
			ASSERT_EQ(0, set_path(d, paths[j]));
			fd = open(d->dev, O_RDWR | O_DIRECT);
			ASSERT_LE(0, fd) TH_LOG("open %s: %s", d->dev, strerror(errno));
			ASSERT_EQ(EIO, io(fd, self->buf, block_of(r), 0))
				TH_LOG("%s %s: first read of %lld", d->name, paths[j], r);
			ASSERT_EQ(0, io(fd, self->buf, block_of(r), 0))
				TH_LOG("%s %s: second read of %lld", d->name, paths[j], r);
			vblk_fill(self->buf, BLK, block_of(w), w);
			ASSERT_EQ(EIO, io(fd, self->buf, block_of(w), 1))
				TH_LOG("%s %s: first write of %lld", d->name, paths[j], w);
			ASSERT_EQ(0, io(fd, self->buf, block_of(w), 1))
				TH_LOG("%s %s: second write of %lld", d->name, paths[j], w);
			memset(self->buf, 0, BLK);
			ASSERT_EQ(0, io(fd, self->buf, block_of(w), 0));
			ASSERT_EQ(-1, vblk_check(self->buf, BLK, block_of(w), w))
				TH_LOG("%s %s: the second write did not land", d->name, paths[j]);
			close(fd);
			TH_LOG("%s %s: sectors %lld and %lld failed once, then worked",
			       d->name, *paths[j] ? paths[j] : "(in-tree)", r, w);
		}
	}
}

TEST_HARNESS_MAIN
