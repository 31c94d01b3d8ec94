// SPDX-License-Identifier: GPL-2.0
/*
 * Bad input to every knob the driver takes from user space: a disk's
 * io_path and each writable module parameter (io_path, num_request_queues,
 * poll_queues).  Each gets a few hundred writes -- valid values mutated
 * (case, whitespace, a character more or less, a NUL byte inside), random
 * bytes, long strings, numbers in every notation and out of range -- and
 * each write must be taken or refused exactly as documented:
 *
 * - io_path: "auto", "bio" or "request", with at most one newline after
 *   it; what follows a NUL byte is not seen (the kernel's strings end
 *   there).  The module parameter reads back the word, the disk's
 *   attribute the path it took ("auto": the one the driver chooses).
 * - num_request_queues, poll_queues: an unsigned 32-bit number as
 *   kstrtouint() reads it in base 0 (an optional "+", "0x" hexadecimal or
 *   "0" octal, one newline allowed after it), read back in decimal.
 * - queue_depth is read-only: every write is refused.
 * - a write longer than a page is cut to its first page, as by all of
 *   sysfs: that page is what is taken or refused.
 *
 * A refused write changes nothing (the value, and the disk's
 * io_path_reason).  Under the in-tree driver the same parameters it has
 * must behave the same.  The seed is logged; VBLK_FUZZ_SEED repeats a run.
 *
 * vmtest guest stock-fuzz --driver stock
 * vmtest disk d ram size=16M
 * vmtest guest ours-fuzz --driver ours
 * vmtest disk d ram size=16M dev.bio=on dev.x-test-rotation-rate=1 dev.x-test-read-latency-hint=45
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_util.h"

#define WRITES		400
#define PAGE		4096
#define PARAMS		"/sys/module/virtio_blk/parameters/"

static const char *const paths[] = { "auto", "bio", "request", NULL };

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned int below(unsigned int n)
{
	return next() % n;
}

/* What the kernel sees of a write: up to its first NUL byte. */
static size_t seen(const char *in, size_t len)
{
	const char *nul = memchr(in, '\0', len);

	return nul ? (size_t)(nul - in) : len;
}

/*
 * io_path's grammar: the word of @want (its index in paths[]), or -1 when
 * refused.
 */
static int word_oracle(const char *in, size_t len)
{
	size_t n = seen(in, len);
	int i;

	if (n && in[n - 1] == '\n')
		n--;
	for (i = 0; paths[i]; i++)
		if (strlen(paths[i]) == n && !memcmp(in, paths[i], n))
			return i;
	return -1;
}

/* kstrtouint(@in, 0): 0 and the value in @val, or -1 when refused. */
static int uint_oracle(const char *in, size_t len, unsigned long long *val)
{
	size_t n = seen(in, len), i = 0, digits = 0;
	unsigned int base = 10, d;
	unsigned long long v = 0;
	int overflow = 0;

	if (i < n && in[i] == '+')
		i++;
	if (i + 2 < n && in[i] == '0' && (in[i + 1] | 0x20) == 'x' &&
	    isxdigit((unsigned char)in[i + 2])) {
		base = 16;
		i += 2;
	} else if (i < n && in[i] == '0') {
		base = 8;
	}
	for (; i < n; i++, digits++) {
		unsigned char c = in[i];

		if (isdigit(c))
			d = c - '0';
		else if (isxdigit(c))
			d = (c | 0x20) - 'a' + 10;
		else
			break;
		if (d >= base)
			break;
		if (v > (ULLONG_MAX - d) / base)
			overflow = 1;
		v = v * base + d;
	}
	if (!digits)
		return -1;
	if (i < n && in[i] == '\n')
		i++;
	if (i != n || overflow || v > UINT_MAX)
		return -1;
	*val = v;
	return 0;
}

/* Read a value; exits the test on failure. */
static void value(struct __test_metadata *_metadata, const char *path,
		  char *buf, size_t len)
{
	ASSERT_EQ(0, vblk_read_line(path, buf, len)) TH_LOG("read %s", path);
}

/* What sysfs passes on of a write of @len bytes: at most a page. */
static size_t cut(size_t len)
{
	return len > PAGE ? PAGE : len;
}

/*
 * One write of @len bytes; 0 when sysfs took it (all of it, or its first
 * page), else the errno (EMSGSIZE for a write it cut short otherwise).
 */
static int put(const char *path, const char *in, size_t len)
{
	int fd = open(path, O_WRONLY), err = 0;
	ssize_t n;

	if (fd < 0)
		return errno;
	n = write(fd, in, len);
	if (n < 0)
		err = errno;
	else if ((size_t)n != cut(len))
		err = EMSGSIZE;
	close(fd);
	return err;
}

/* A printable form of an input for the log. */
static const char *show(const char *in, size_t len)
{
	static char out[200];
	size_t i, o = 0;

	for (i = 0; i < len && o + 8 < sizeof(out); i++) {
		unsigned char c = in[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = c;
		else
			o += snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
	}
	snprintf(out + o, sizeof(out) - o, "%s (%zu bytes)", i < len ? "..." : "", len);
	return out;
}

static const char *const numbers[] = {
	"0", "1", "2", "7", "8", "16", "255", "4294967295", "4294967296",
	"18446744073709551615", "18446744073709551616", "-1", "-0", "+0",
	"+5", "0x10", "0X1f", "0x", "0xg", "010", "08", "00", "1e3", "1.5",
	" 5", "5 ", "5\n", "5\n\n", "\n5", "5\t", "0x0000000000000001",
	"99999999999999999999999", "3a", "a3", "+", "++1", "+-1",
};

/* A test input in @buf (3 pages); returns its length. */
static size_t make_input(char *buf, int numeric)
{
	const char *base = numeric ? numbers[below(ARRAY_SIZE(numbers))] :
				     paths[below(3)];
	size_t len, i, m;

	switch (below(4)) {
	case 0:		/* random bytes */
		len = 1 + below(64);
		for (i = 0; i < len; i++)
			buf[i] = next();
		return len;
	case 1:		/* long: up to twice a page */
		len = 1 + below(2 * PAGE);
		for (i = 0; i < len; i++)
			buf[i] = base[i % strlen(base)];
		return len;
	default:	/* a valid value, mutated 0 to 3 times */
		len = strlen(base);
		memcpy(buf, base, len);
		for (m = below(4); m; m--) {
			static const char ws[] = " \t\n\r\v\f";
			size_t at = below(len + 1);

			switch (below(6)) {
			case 0:
				if (len)
					buf[below(len)] ^= 0x20;	/* case */
				break;
			case 1:
			case 2:
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = below(3) ? ws[below(6)] : '\0';
				len++;
				break;
			case 3:
				if (len) {
					at = below(len);
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				}
				break;
			case 4:
				buf[len++] = '\n';
				break;
			default:
				buf[len++] = 0x21 + below(94);
				break;
			}
		}
		return len ? len : 1;
	}
}

FIXTURE(knobs) {
	char disk[300];		/* /sys/block/vdX, "" without one */
	char *buf;
};

FIXTURE_SETUP(knobs)
{
	struct vblk_disk disks[VBLK_MAX_DISKS];
	const char *seed = getenv("VBLK_FUZZ_SEED");

	rng = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	if (!rng)
		rng = 1;
	TH_LOG("seed %llu (VBLK_FUZZ_SEED repeats it)", (unsigned long long)rng);
	ASSERT_LT(0, vblk_disks(disks, VBLK_MAX_DISKS))
		TH_LOG("VBLK_DISK_INFO names no usable disk");
	ASSERT_GT((int)sizeof(self->disk),
		  snprintf(self->disk, sizeof(self->disk), "/sys/block/%s",
			   disks[0].dev + strlen("/dev/")));
	self->buf = malloc(3 * PAGE);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(knobs)
{
	free(self->buf);
}

/* Fuzz a numeric module parameter; it is put back afterwards. */
static void fuzz_uint(struct __test_metadata *_metadata, char *buf,
		      const char *name)
{
	char path[200], before[64], after[64], want[32];
	unsigned long long val;
	int i, err, taken = 0;
	size_t len;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	ASSERT_EQ(0, access(path, F_OK)) TH_LOG("no parameter %s", name);
	value(_metadata, path, before, sizeof(before));
	for (i = 0; i < WRITES; i++) {
		len = make_input(buf, 1);
		value(_metadata, path, after, sizeof(after));
		err = put(path, buf, len);
		if (uint_oracle(buf, cut(len), &val)) {
			ASSERT_NE(0, err) TH_LOG("%s took %s", name, show(buf, len));
			value(_metadata, path, want, sizeof(want));
			ASSERT_STREQ(after, want)
				TH_LOG("%s changed by the refused %s", name, show(buf, len));
			continue;
		}
		ASSERT_EQ(0, err) TH_LOG("%s refused %s: %s", name, show(buf, len),
					 strerror(err));
		snprintf(want, sizeof(want), "%llu", val);
		value(_metadata, path, after, sizeof(after));
		ASSERT_STREQ(want, after) TH_LOG("%s after %s", name, show(buf, len));
		taken++;
	}
	ASSERT_EQ(0, put(path, before, strlen(before)));
	TH_LOG("%s: %d of %d writes taken, as kstrtouint() reads them", name,
	       taken, WRITES);
}

TEST_F(knobs, num_request_queues)
{
	fuzz_uint(_metadata, self->buf, "num_request_queues");
}

TEST_F(knobs, poll_queues)
{
	fuzz_uint(_metadata, self->buf, "poll_queues");
}

TEST_F(knobs, queue_depth_is_read_only)
{
	char before[64], after[64];
	size_t len;
	int i;

	value(_metadata, PARAMS "queue_depth", before, sizeof(before));
	for (i = 0; i < 50; i++) {
		len = make_input(self->buf, 1);
		ASSERT_NE(0, put(PARAMS "queue_depth", self->buf, len))
			TH_LOG("queue_depth took %s", show(self->buf, len));
	}
	value(_metadata, PARAMS "queue_depth", after, sizeof(after));
	ASSERT_STREQ(before, after);
}

/*
 * io_path, the module parameter (@disk NULL: reads back the word) or a
 * disk's attribute (reads back the path taken; its reason must not move
 * on a refused write).
 */
static void fuzz_io_path(struct __test_metadata *_metadata, char *buf,
			 const char *disk)
{
	char path[340], reason[340], before[64], cur[64], got[64];
	char cur_reason[64], got_reason[64], auto_path[16];
	int i, err, w, taken = 0;
	size_t len;

	if (disk) {
		snprintf(path, sizeof(path), "%s/io_path", disk);
		snprintf(reason, sizeof(reason), "%s/io_path_reason", disk);
		ASSERT_EQ(0, put(path, "auto", 4));
		value(_metadata, path, auto_path, sizeof(auto_path));
	} else {
		snprintf(path, sizeof(path), PARAMS "io_path");
	}
	value(_metadata, path, before, sizeof(before));
	for (i = 0; i < WRITES; i++) {
		len = make_input(buf, below(4) == 0);
		value(_metadata, path, cur, sizeof(cur));
		if (disk)
			value(_metadata, reason, cur_reason, sizeof(cur_reason));
		err = put(path, buf, len);
		w = word_oracle(buf, cut(len));
		value(_metadata, path, got, sizeof(got));
		if (w < 0) {
			ASSERT_NE(0, err) TH_LOG("%s took %s", path, show(buf, len));
			ASSERT_STREQ(cur, got)
				TH_LOG("%s changed by the refused %s", path, show(buf, len));
			if (disk) {
				value(_metadata, reason, got_reason, sizeof(got_reason));
				ASSERT_STREQ(cur_reason, got_reason)
					TH_LOG("the reason changed by the refused %s",
					       show(buf, len));
			}
			continue;
		}
		ASSERT_EQ(0, err) TH_LOG("%s refused %s: %s", path, show(buf, len),
					 strerror(err));
		ASSERT_STREQ(disk && w == 0 ? auto_path : paths[w], got)
			TH_LOG("%s after %s", path, show(buf, len));
		taken++;
	}
	ASSERT_EQ(0, put(path, disk ? "auto" : before, disk ? 4 : strlen(before)));
	TH_LOG("%s: %d of %d writes taken", path, taken, WRITES);
}

/* The in-tree driver has no io_path at all (VBLK_DRIVER=stock). */
static int stock(void)
{
	const char *driver = getenv("VBLK_DRIVER");

	return driver && !strcmp(driver, "stock");
}

TEST_F(knobs, io_path_parameter)
{
	if (stock()) {
		ASSERT_NE(0, access(PARAMS "io_path", F_OK));
		return;
	}
	fuzz_io_path(_metadata, self->buf, NULL);
}

TEST_F(knobs, io_path_attribute)
{
	char attr[340];

	snprintf(attr, sizeof(attr), "%s/io_path", self->disk);
	if (stock()) {
		ASSERT_NE(0, access(attr, F_OK));
		return;
	}
	fuzz_io_path(_metadata, self->buf, self->disk);
}

TEST_HARNESS_MAIN
