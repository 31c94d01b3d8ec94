// SPDX-License-Identifier: GPL-2.0
/*
 * Power cuts with a volatile write cache: nothing fsync() acknowledged is
 * lost, on either path and across live path switches.
 *
 * The disk is served by the vhost-user test back end with a volatile
 * write cache (vu.cache=writeback): a completed write stays in the cache
 * until a flush writes it to the image, and a power cut ("vblk_host
 * backend NAME power-cut") keeps a random part of the unflushed writes,
 * in random 4 KiB pieces, drops the rest and fails every later request
 * (it lands just before one of the 16 requests after the signal, often
 * right before a flush).
 * The guest itself keeps running: what it was told is durable is
 * recorded in its own memory, which the cut does not touch.
 *
 * ext4 (with its journal) on that disk; per cycle, a workload process
 * writes files whose contents follow from (seed, cycle, number) and
 * deletes older ones; each file is fsync()ed, then its directory, and
 * only then recorded as durable (a deletion is forgotten before it
 * starts); scratch files written without a flush keep unflushed writes
 * in the cache.  After a random time the power goes; the test unmounts the
 * dead filesystem, unplugs the disk and plugs it again on a new back end
 * over the same image (hot-plug, no reboot); the journal is replayed by a
 * mount and umount, e2fsck -fn must find nothing, and every file
 * recorded durable must read back whole.  Cycles take turns at probing
 * the disk on the request path (a plain disk), on the bio path, and on
 * the bio path with live switches between bio and request at random
 * intervals during the workload, so the cut finds either path.
 *
 * VBLK_POWERCUT_SEED repeats the test's own choices (times, sizes,
 * paths; the back end logs the seed of its own), VBLK_POWERCUT_CUTS sets
 * the number of cuts (default 24, eight of each kind), and
 * VBLK_POWERCUT_NO_FLUSH=1 makes it a negative control that must fail:
 * queue/write_cache says "write through", so the kernel sends no flush
 * to the volatile cache.  Under emulation the moment a cut lands still
 * depends on the host's speed: a failure names the cycle, the path and
 * the file, and the back end's log the pieces it kept.
 *
 * vmtest guest ours-powercut --driver ours
 * vmtest with --file /sbin/e2fsck:/sbin/e2fsck
 * vmtest disk pc vhost size=128M vu.cache=writeback hotplug=1 role=powercut
 * vmtest timeout 600
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define MNT		"/tmp/vblk_powercut.mnt"
#define LOG		"/tmp/vblk_powercut.log"
#define WHY		"/tmp/vblk_powercut.why"
#define MODPARAM	"/sys/module/virtio_blk/parameters/io_path"
#define NDIRS		4
#define MAX_FILES	16384
#define LIVE_CAP	(8ULL << 20)	/* bytes of live files the workload keeps */
#define CHUNK		65536
#define SCRATCH_KEEP	4	/* scratch files the workload keeps at once */
#define CUT_MIN_MS	300
#define CUT_MAX_MS	4000
#define SWITCH_MAX_MS	300
#define ATTACH_WAIT_S	60
#define DETACH_WAIT_S	60
#define WORKLOAD_END_S	60
#define UMOUNT_WAIT_S	30
#define HOST_WAIT_S	180	/* device_del alone may take 60 s on the host */

/* One line of the durable log the workload appends to (tmpfs: guest RAM). */
struct rec {
	char op;		/* 'D' durable, 'U' about to be unlinked */
	uint32_t cycle, num;
	uint64_t size;
};

struct file {
	uint32_t cycle, num;
	uint64_t size;
};

static struct file files[MAX_FILES];
static int nfiles;
static uint64_t seed;
static char name[64], dev[300], sysdir[320];

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void __attribute__((noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	printf("# FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (seed %llu)\n", (unsigned long long)seed);
	fflush(stdout);
	exit(1);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The content seed of file @num of @cycle. */
static uint64_t file_seed(uint32_t cycle, uint32_t num)
{
	return seed * 1000003ULL + (uint64_t)cycle * 65537ULL + num + 1;
}

static void file_path(char *buf, size_t len, uint32_t cycle, uint32_t num)
{
	snprintf(buf, len, MNT "/d%u/f%u-%u", num % NDIRS, cycle, num);
}

/* The scratch file written after file @num of @cycle (see scratch()). */
static void scratch_path(char *buf, size_t len, uint32_t cycle, uint32_t num)
{
	snprintf(buf, len, MNT "/d%u/s%u-%u", num % NDIRS, cycle, num);
}

/*
 * host(): ask the host for an action over the control channel, as
 * vblk_host does; the reply's status (0: done).
 */
static int host(const char *fmt, ...)
{
	char line[256], reply[512];
	size_t n = 0;
	va_list ap;
	int fd;

	strcpy(line, "VBLK-HOST ");
	va_start(ap, fmt);
	vsnprintf(line + 10, sizeof(line) - 11, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	fd = open("/dev/ttyS1", O_WRONLY);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		die("cannot write to the host's control channel");
	close(fd);
	fd = open("/dev/ttyS1", O_RDONLY);
	if (fd < 0)
		die("cannot read the host's control channel");
	while (n < sizeof(reply) - 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		r = poll(&pfd, 1, HOST_WAIT_S * 1000);
		if (r == 0)
			die("host action '%.*s': no reply within %d s",
			    (int)strlen(line) - 1, line, HOST_WAIT_S);
		r = r < 0 ? r : read(fd, reply + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || reply[n] == '\n')
			break;
		n++;
	}
	reply[n] = '\0';
	close(fd);
	if (strncmp(reply, "VBLK-HOST-REPLY ", 16))
		die("host action '%.*s': reply '%s'", (int)strlen(line) - 1, line, reply);
	if (reply[16] != '0')
		say("host action '%.*s' failed: %s", (int)strlen(line) - 1, line,
		    reply + 18);
	return reply[16] - '0';
}

/* run(): a command through the shell, its output into @out; exit status. */
static int run(const char *out, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 40, fmt, ap);
	va_end(ap);
	snprintf(cmd + strlen(cmd), 40, " >%s 2>&1", out);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void show(const char *path)
{
	char line[256];
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		printf("#   %s", line);
	if (f)
		fclose(f);
	fflush(stdout);
}

static int write_sys(const char *path, const char *val)
{
	return vblk_write_str(path, val);
}

/* -- the workload (a child process) -------------------------------------- */

static int log_fd;

/*
 * The workload stops at its first failed call; that is expected once the
 * power is gone, so the exit status is 0, and what failed is left in WHY
 * for the case it happens before the cut.
 */
static void __attribute__((noreturn)) stop(const char *what, uint32_t cycle,
					  uint32_t num)
{
	char line[200];
	int fd, len;

	len = snprintf(line, sizeof(line), "%s of file %u-%u: %s", what, cycle, num,
		       strerror(errno));
	fd = open(WHY, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd >= 0) {
		if (write(fd, line, len) != len)
			_exit(3);
		close(fd);
	}
	_exit(0);
}

static void log_rec(char op, uint32_t cycle, uint32_t num, uint64_t size)
{
	struct rec r = { op, cycle, num, size };

	if (write(log_fd, &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	int ret;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	close(fd);
	return ret;
}

/* Write file @num of @cycle; 0 once it and its directory are durable. */
static int write_file(uint32_t cycle, uint32_t num, uint64_t size, void *buf)
{
	char path[128], dir[128];
	uint64_t off;
	int fd;

	file_path(path, sizeof(path), cycle, num);
	snprintf(dir, sizeof(dir), MNT "/d%u", num % NDIRS);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0)
		return -1;
	for (off = 0; off < size; off += CHUNK) {
		size_t n = size - off < CHUNK ? size - off : CHUNK;

		vblk_fill(buf, n, off, file_seed(cycle, num));
		if (write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return -1;
		}
	}
	if (fsync(fd)) {
		close(fd);
		return -1;
	}
	if (close(fd))
		return -1;
	return fsync_dir(dir);
}

/*
 * A file that is never made durable: its data is sent to the disk
 * (sync_file_range, no flush) and left there, so that the cache holds
 * unflushed writes most of the time, next to the durable files' blocks.
 * Only the last SCRATCH_KEEP are kept (the older ones are unlinked
 * without a flush), so a fast host cannot fill the disk within a cycle.
 */
static int scratch(uint32_t cycle, uint32_t num, uint64_t size, void *buf)
{
	char path[128];
	uint64_t off;
	int fd, ret = 0;

	scratch_path(path, sizeof(path), cycle, num);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0)
		return -1;
	for (off = 0; off < size && !ret; off += CHUNK) {
		size_t n = size - off < CHUNK ? size - off : CHUNK;

		vblk_fill(buf, n, off, ~file_seed(cycle, num));
		ret = write(fd, buf, n) != (ssize_t)n;
	}
	if (!ret)
		ret = sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	close(fd);
	return ret;
}

static int unlink_scratch(uint32_t cycle, uint32_t num)
{
	char path[128];

	scratch_path(path, sizeof(path), cycle, num);
	return unlink(path);
}

/*
 * Files, each made durable before it is logged, after each a scratch
 * file that is not, and deletions of older files (logged before they
 * start) so that freed blocks are reused, until a call fails (the power
 * went: see stop()) or WORKLOAD_END_S passed (exit 2: the cut never came).
 */
static void __attribute__((noreturn)) workload(uint32_t cycle, uint64_t rs)
{
	uint64_t live = 0, start = now_ms();
	uint32_t num = 0;
	void *buf;
	int i;

	if (posix_memalign(&buf, 4096, CHUNK))
		_exit(3);
	for (i = 0; i < nfiles; i++)
		live += files[i].size;
	for (;;) {
		uint64_t size = 4096 * (1 + rnd(&rs) % 64) + 512 * (rnd(&rs) % 8);

		if (now_ms() - start > WORKLOAD_END_S * 1000)
			_exit(2);
		while (nfiles && (live + size > LIVE_CAP || rnd(&rs) % 4 == 0)) {
			struct file victim;
			char path[128], dir[128];

			i = rnd(&rs) % nfiles;
			victim = files[i];
			files[i] = files[--nfiles];
			live -= victim.size;
			log_rec('U', victim.cycle, victim.num, victim.size);
			file_path(path, sizeof(path), victim.cycle, victim.num);
			snprintf(dir, sizeof(dir), MNT "/d%u", victim.num % NDIRS);
			if (unlink(path) || fsync_dir(dir))
				stop("deletion", victim.cycle, victim.num);
		}
		if (write_file(cycle, num, size, buf))
			stop("durable write", cycle, num);
		log_rec('D', cycle, num, size);
		if (scratch(cycle, num, 4096 * (16 + rnd(&rs) % 48), buf))
			stop("scratch write", cycle, num);
		if (num >= SCRATCH_KEEP && unlink_scratch(cycle, num - SCRATCH_KEEP))
			stop("scratch deletion", cycle, num - SCRATCH_KEEP);
		if (nfiles < MAX_FILES)
			files[nfiles++] = (struct file){ cycle, num, size };
		live += size;
		num++;
	}
}

/* -- the host side of each cycle ------------------------------------------ */

static int find_disk(void)
{
	return !vblk_find_dev(name, dev, sizeof(dev));
}

/* Wait up to @secs s for the disk to come (@present) or go; 0 when it did. */
static int wait_disk(int present, int secs)
{
	uint64_t end = now_ms() + secs * 1000ULL;

	while (find_disk() != present) {
		if (now_ms() > end)
			return -1;
		sleep_ms(100);
	}
	if (present)
		snprintf(sysdir, sizeof(sysdir), "/sys/block/%s", dev + 5);
	return 0;
}

static const char *io_path(void)
{
	static char buf[32];
	char path[352];

	snprintf(path, sizeof(path), "%s/io_path", sysdir);
	if (vblk_read_line(path, buf, sizeof(buf)))
		return "?";
	return buf;
}

/* Plug the disk with the driver set to probe it on @path. */
static void attach(int cycle, const char *path)
{
	if (write_sys(MODPARAM, path))
		die("cycle %d: cannot set io_path=%s for the probe", cycle, path);
	if (host("replug %s", name))
		die("cycle %d: the host could not plug %s", cycle, name);
	if (wait_disk(1, ATTACH_WAIT_S))
		die("cycle %d: waited %d s in vain for disk %s", cycle, ATTACH_WAIT_S,
		    name);
	if (strcmp(io_path(), path))
		die("cycle %d: %s probed on the %s path, not %s", cycle, dev, io_path(),
		    path);
	if (getenv("VBLK_POWERCUT_NO_FLUSH")) {
		char wc[352];

		/* The negative control: the kernel sends no flush at all. */
		snprintf(wc, sizeof(wc), "%s/queue/write_cache", sysdir);
		if (write_sys(wc, "write through"))
			die("cycle %d: cannot write %s", cycle, wc);
	}
}

static void detach(int cycle)
{
	if (host("device_del %s", name))
		die("cycle %d: the host could not unplug %s", cycle, name);
	if (wait_disk(0, DETACH_WAIT_S))
		die("cycle %d: %s still there %d s after device_del", cycle, dev,
		    DETACH_WAIT_S);
}

static void do_mount(int cycle, const char *what)
{
	if (mount(dev, MNT, "ext4", 0, ""))
		die("cycle %d: %s: mounting %s failed: %s", cycle, what, dev,
		    strerror(errno));
}

static void do_umount(int cycle, const char *what)
{
	if (umount(MNT))
		die("cycle %d: %s: unmounting %s failed: %s", cycle, what, dev,
		    strerror(errno));
}

/*
 * Unmount the filesystem whose disk lost its power; EBUSY while the
 * kernel still finishes what failed is retried for UMOUNT_WAIT_S.
 */
static void umount_dead(int cycle)
{
	uint64_t end = now_ms() + UMOUNT_WAIT_S * 1000ULL;

	while (umount(MNT)) {
		if (errno != EBUSY || now_ms() > end)
			die("cycle %d: unmounting %s after the cut failed: %s (waited up "
			    "to %d s)", cycle, dev, strerror(errno), UMOUNT_WAIT_S);
		sleep_ms(100);
	}
}

static int has_file(uint32_t cycle, uint32_t num)
{
	int i;

	for (i = 0; i < nfiles; i++)
		if (files[i].cycle == cycle && files[i].num == num)
			return 1;
	return 0;
}

/* Bytes of file @f that are not what was written; 0 when it is whole. */
static uint64_t check_file(const struct file *f, void *buf, char *why, size_t len)
{
	char path[128];
	uint64_t off, lost = 0;
	struct stat st;
	int fd;

	file_path(path, sizeof(path), f->cycle, f->num);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return f->size;
	}
	if ((uint64_t)st.st_size != f->size) {
		snprintf(why, len, "%s: %llu bytes, %llu were written", path,
			 (unsigned long long)st.st_size, (unsigned long long)f->size);
		/* Longer than written is as wrong as shorter. */
		lost = (uint64_t)st.st_size < f->size ? f->size - st.st_size :
						       st.st_size - f->size;
	}
	for (off = 0; off < f->size && off < (uint64_t)st.st_size; off += CHUNK) {
		size_t n = f->size - off < CHUNK ? f->size - off : CHUNK;
		ssize_t r = pread(fd, buf, n, off);

		if (r != (ssize_t)n || vblk_check(buf, n, off, file_seed(f->cycle, f->num)) >= 0) {
			if (!lost)
				snprintf(why, len, "%s: wrong data in the %zu bytes at %llu",
					 path, n, (unsigned long long)off);
			lost += n;
		}
	}
	close(fd);
	return lost;
}

/*
 * After a cut: the journal replayed (mount, umount), e2fsck -fn clean,
 * every durable file whole; then what is not durable is removed, so that
 * the next workload starts from exactly the durable set.
 */
static void recover(int cycle, uint64_t *checked, uint64_t *bytes, uint64_t *lost)
{
	uint64_t cut_lost = 0, cut_bytes = 0;
	char why[300] = "", path[160];
	void *buf;
	int i, d;

	do_mount(cycle, "journal replay");
	do_umount(cycle, "journal replay");
	if (run("/tmp/vblk_powercut.fsck", "/sbin/e2fsck -fn %s", dev)) {
		show("/tmp/vblk_powercut.fsck");
		die("cycle %d: e2fsck -fn %s found problems after the cut", cycle, dev);
	}
	do_mount(cycle, "check");
	if (posix_memalign(&buf, 4096, CHUNK))
		die("out of memory");
	for (i = 0; i < nfiles; i++) {
		char w[300] = "";
		uint64_t l = check_file(&files[i], buf, w, sizeof(w));

		if (l && !cut_lost)
			snprintf(why, sizeof(why), "%s", w);
		cut_lost += l;
		cut_bytes += files[i].size;
	}
	free(buf);
	*checked += nfiles;
	*bytes += cut_bytes;
	*lost += cut_lost;
	if (cut_lost)
		die("cycle %d: %llu acknowledged bytes lost after the cut; first: %s",
		    cycle, (unsigned long long)cut_lost, why);
	say("cycle %d: e2fsck clean, %d durable files whole (%llu bytes)", cycle,
	    nfiles, (unsigned long long)cut_bytes);
	for (d = 0; d < NDIRS; d++) {
		struct dirent *e;
		DIR *dir;

		snprintf(path, sizeof(path), MNT "/d%d", d);
		dir = opendir(path);
		if (!dir)
			die("cycle %d: %s: %s", cycle, path, strerror(errno));
		while ((e = readdir(dir))) {
			unsigned int c, n;
			char p[448];

			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			if (sscanf(e->d_name, "f%u-%u", &c, &n) == 2 && has_file(c, n))
				continue;
			if (unlink(p))
				die("cycle %d: removing %s: %s", cycle, p, strerror(errno));
		}
		closedir(dir);
		if (fsync_dir(path))
			die("cycle %d: fsync of %s: %s", cycle, path, strerror(errno));
	}
}

/* Read what the workload logged into the durable set. */
static int take_log(void)
{
	struct rec r;
	int fd = open(LOG, O_RDONLY), added = 0;
	int i;

	if (fd < 0)
		die("cannot read %s", LOG);
	while (read(fd, &r, sizeof(r)) == sizeof(r)) {
		if (r.op == 'D') {
			if (nfiles == MAX_FILES)
				die("more than %d durable files", MAX_FILES);
			files[nfiles++] = (struct file){ r.cycle, r.num, r.size };
			added++;
			continue;
		}
		for (i = 0; i < nfiles; i++) {
			if (files[i].cycle == r.cycle && files[i].num == r.num) {
				files[i] = files[--nfiles];
				break;
			}
		}
	}
	close(fd);
	return added;
}

static const char *const modes[] = {
	"request path", "bio path", "bio path, switching live"
};

/* One cycle's workload and power cut; how many files became durable. */
static int cut_cycle(int cycle, int mode, uint64_t *rs, int *switches)
{
	uint64_t delay = CUT_MIN_MS + rnd(rs) % (CUT_MAX_MS - CUT_MIN_MS);
	uint64_t start = now_ms(), end;
	char path_file[352];
	int st, added, flip = 0;
	pid_t pid;

	snprintf(path_file, sizeof(path_file), "%s/io_path", sysdir);
	unlink(WHY);
	log_fd = open(LOG, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0600);
	if (log_fd < 0)
		die("cannot create %s", LOG);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid)
		workload(cycle, rnd(rs) | 1);
	close(log_fd);
	while (now_ms() - start < delay) {
		uint64_t left = delay - (now_ms() - start);
		uint64_t pause = mode == 2 ? 1 + rnd(rs) % SWITCH_MAX_MS : left;

		sleep_ms(pause < left ? pause : left);
		if (mode == 2 && now_ms() - start < delay) {
			const char *p = flip++ % 2 ? "bio" : "request";

			if (write_sys(path_file, p) || strcmp(io_path(), p))
				die("cycle %d: switching %s to %s failed", cycle, dev, p);
			(*switches)++;
		}
	}
	if (waitpid(pid, &st, WNOHANG) == pid) {
		char why[200];

		if (vblk_read_line(WHY, why, sizeof(why)))
			snprintf(why, sizeof(why), "no failure recorded");
		die("cycle %d: the workload ended before the cut at %llu ms on the %s "
		    "path (status %#x: %s)", cycle, (unsigned long long)delay, io_path(),
		    st, why);
	}
	if (host("backend %s power-cut", name))
		die("cycle %d: the host could not cut the power of %s", cycle, name);
	end = now_ms() + WORKLOAD_END_S * 1000ULL;
	while (waitpid(pid, &st, WNOHANG) != pid) {
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			die("cycle %d: the workload still ran %d s after the cut", cycle,
			    WORKLOAD_END_S);
		}
		sleep_ms(50);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("cycle %d: the workload ended with status %#x", cycle, st);
	added = take_log();
	say("cycle %d (%s): power cut after %llu ms on the %s path, %d files "
	    "acknowledged durable in this cycle, %d in all", cycle, modes[mode],
	    (unsigned long long)delay, io_path(), added, nfiles);
	return added;
}

int main(void)
{
	const char *hp = getenv("VBLK_HOTPLUG_DISKS"), *env;
	uint64_t checked = 0, bytes = 0, lost = 0, rs;
	int cuts = 24, cycle, switches = 0, acked = 0, per_mode[3] = { 0 };
	char saved[32], word[64];

	env = getenv("VBLK_POWERCUT_SEED");
	seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) % 1000000 + 1;
	env = getenv("VBLK_POWERCUT_CUTS");
	if (env)
		cuts = atoi(env);
	if (cuts < 1)
		die("VBLK_POWERCUT_CUTS=%s: want 1 or more", env);
	say("seed %llu (VBLK_POWERCUT_SEED repeats the test's choices), %d cuts",
	    (unsigned long long)seed, cuts);
	rs = seed * 0x9e3779b97f4a7c15ULL | 1;

	if (access(MODPARAM, F_OK))
		die("needs the adaptive driver (no %s)", MODPARAM);
	if (system("test -x /sbin/e2fsck && test -x /sbin/mke2fs"))
		die("needs e2fsck and mke2fs in the guest");
	while (hp && sscanf(hp, "%63s", word) == 1) {
		if (vblk_disk_has_role(word, "powercut")) {
			snprintf(name, sizeof(name), "%s", word);
			break;
		}
		hp += strspn(hp, " ");
		hp += strcspn(hp, " ");
	}
	if (!name[0])
		die("no hotplug=1 disk with role=powercut");
	if (vblk_read_line(MODPARAM, saved, sizeof(saved)))
		die("cannot read %s", MODPARAM);
	mkdir(MNT, 0755);

	for (cycle = 0; cycle <= cuts; cycle++) {
		int mode = (cycle + seed) % 3;

		attach(cycle, mode == 0 ? "request" : "bio");
		if (cycle == 0) {
			int d;
			char p[352];

			if (run("/tmp/vblk_powercut.mkfs",
				"/sbin/mke2fs -F -q -t ext4 -b 4096 -E nodiscard %s", dev)) {
				show("/tmp/vblk_powercut.mkfs");
				die("mke2fs on %s failed", dev);
			}
			do_mount(cycle, "first");
			for (d = 0; d < NDIRS; d++) {
				snprintf(p, sizeof(p), MNT "/d%d", d);
				if (mkdir(p, 0755))
					die("mkdir %s: %s", p, strerror(errno));
			}
			if (fsync_dir(MNT))
				die("fsync of %s: %s", MNT, strerror(errno));
			snprintf(p, sizeof(p), "/proc/fs/jbd2/%s-8", dev + 5);
			if (access(p, F_OK))
				die("ext4 on %s runs without a journal (no %s)", dev, p);
			say("ext4 with a journal on %s, %s", dev, name);
		} else {
			recover(cycle, &checked, &bytes, &lost);
		}
		if (cycle == cuts) {
			do_umount(cycle, "the end");
			detach(cycle);
			break;
		}
		acked += cut_cycle(cycle, mode, &rs, &switches);
		per_mode[mode]++;
		umount_dead(cycle);
		detach(cycle);
	}
	if (write_sys(MODPARAM, saved))
		die("cannot put %s back to %s", MODPARAM, saved);
	say("%d power cuts (%d on the request path, %d on the bio path, %d with %d "
	    "live switches); %d files acknowledged durable; %llu file checks, %llu "
	    "bytes verified; %llu acknowledged bytes lost", cuts, per_mode[0],
	    per_mode[1], per_mode[2], switches, acked, (unsigned long long)checked,
	    (unsigned long long)bytes, (unsigned long long)lost);
	if (!acked || !checked)
		die("no file became durable: the test proved nothing");
	return 0;
}
