/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the C selftests: find the disks tools/vmrun attached (by
 * serial, from /vblk/run.conf) and fill/check buffers with a pattern that
 * encodes the byte's disk offset, so data written to or read from the
 * wrong place is caught as surely as corrupted data.
 */
#ifndef VBLK_TEST_UTIL_H
#define VBLK_TEST_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VBLK_MAX_DISKS 16

struct vblk_disk {
	char name[32];
	char cls[32];
	char dev[300];
	unsigned long long bytes;
};

/* Read a one-line sysfs or config value; returns 0 on success. */
static inline int vblk_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Write @s to a sysfs attribute; returns 0 when all of it was taken. */
static inline int vblk_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s));
	close(fd);
	return r == (ssize_t)strlen(s) ? 0 : -1;
}

/* /dev node of the virtio disk whose serial is @name. */
static inline int vblk_find_dev(const char *name, char *dev, size_t len)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	char path[300], serial[64];
	int ret = -1;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "vd", 2))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
		if (vblk_read_line(path, serial, sizeof(serial)))
			continue;
		if (!strcmp(serial, name)) {
			snprintf(dev, len, "/dev/%s", e->d_name);
			ret = 0;
			break;
		}
	}
	closedir(d);
	return ret;
}

/*
 * The disks of this run, from VBLK_DISK_INFO ("name:class:bytes ...") in
 * the environment.  Returns how many were found, or -1 if one is missing.
 */
static inline int vblk_disks(struct vblk_disk *disks, int max)
{
	const char *info = getenv("VBLK_DISK_INFO");
	char *copy, *tok, *save = NULL;
	int n = 0;

	if (!info)
		return -1;
	copy = strdup(info);
	for (tok = strtok_r(copy, " ", &save); tok && n < max;
	     tok = strtok_r(NULL, " ", &save)) {
		struct vblk_disk *d = &disks[n];

		if (sscanf(tok, "%31[^:]:%31[^:]:%llu", d->name, d->cls,
			   &d->bytes) != 3 ||
		    vblk_find_dev(d->name, d->dev, sizeof(d->dev))) {
			free(copy);
			return -1;
		}
		n++;
	}
	free(copy);
	return n;
}

/*
 * vblk_env_word(VAR, PREFIX, buf, len): the rest of the first word of the
 * space-separated environment variable VAR that starts with PREFIX, into
 * buf; returns 0 when there is one.
 */
static inline int vblk_env_word(const char *var, const char *prefix,
				char *buf, size_t len)
{
	const char *p = getenv(var);
	size_t plen = strlen(prefix);

	while (p && *p) {
		size_t wlen = strcspn(p, " ");

		if (wlen >= plen && !strncmp(p, prefix, plen) &&
		    wlen - plen < len) {
			memcpy(buf, p + plen, wlen - plen);
			buf[wlen - plen] = '\0';
			return 0;
		}
		p += wlen;
		p += strspn(p, " ");
	}
	return -1;
}

/* Whether the runner gave disk NAME role=ROLE (VBLK_DISK_ROLES). */
static inline int vblk_disk_has_role(const char *name, const char *role)
{
	char word[96], got[64];

	if (snprintf(word, sizeof(word), "%s:", name) >= (int)sizeof(word))
		return 0;
	return !vblk_env_word("VBLK_DISK_ROLES", word, got, sizeof(got)) &&
	       !strcmp(got, role);
}

/*
 * vblk_disk_expect(NAME, KEY, buf, len): the value of disk NAME's
 * expect.KEY disk key (VBLK_DISK_EXPECT); returns 0 when it has one.
 */
static inline int vblk_disk_expect(const char *name, const char *key,
				   char *buf, size_t len)
{
	char word[96];

	if (snprintf(word, sizeof(word), "%s:%s=", name, key) >= (int)sizeof(word))
		return -1;
	return vblk_env_word("VBLK_DISK_EXPECT", word, buf, len);
}

/* Disks whose reads return what was written (null-co reads zeroes). */
static inline int vblk_disk_keeps_data(const struct vblk_disk *d)
{
	return strcmp(d->cls, "null") != 0;
}

static inline uint64_t vblk_pattern_word(uint64_t off, uint64_t seed)
{
	uint64_t x = (off / 8) ^ (seed * 0x9e3779b97f4a7c15ULL);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 29);
}

static inline void vblk_fill(void *buf, size_t len, uint64_t off, uint64_t seed)
{
	uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = vblk_pattern_word(off + i * 8, seed);
}

/* Offset of the first mismatching byte within @buf, or -1 if it matches. */
static inline long long vblk_check(const void *buf, size_t len, uint64_t off,
				   uint64_t seed)
{
	const uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != vblk_pattern_word(off + i * 8, seed))
			return (long long)(i * 8);
	return -1;
}

#endif /* VBLK_TEST_UTIL_H */
