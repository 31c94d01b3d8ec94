// SPDX-License-Identifier: GPL-2.0
/*
 * symprof: a QEMU TCG plugin that counts the guest instructions executed
 * in each kernel translation block, for tools/bench/profile.py.
 *
 * Every kernel-space block gets a slot in one per-vCPU scoreboard; the
 * block's instruction count is added to its slot inline each time it
 * runs, so counting costs no helper call.  Blocks retranslated at the
 * same address with the same length share a slot.  User-space blocks
 * all go to slot 0.  At exit the plugin writes, to the file named by
 * out=PATH, one line per slot that ran:
 *
 *   user <instructions>
 *   <hex address> <instructions>
 *
 * and "lost <instructions>" for blocks that found no free slot.  Symbols
 * are matched on the host, from the guest's /proc/kallsyms.
 *
 * With ctl=FIFO the plugin also takes snapshots while the guest runs:
 * each line "snap PATH" written to the FIFO writes the counts so far, in
 * the same format, to PATH (atomically: PATH appears when complete).  The
 * difference of two snapshots is what ran in between.
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* x86-64 kernel addresses: the upper half of the address space */
#define KERNEL_START	0xffff800000000000ULL
#define MAX_SLOTS	(1u << 18)
#define SLOT_USER	0
#define SLOT_LOST	1
#define FIRST_SLOT	2

static struct qemu_plugin_scoreboard *counts;
static GHashTable *slots;		/* (address, length) -> slot + 1 */
static uint64_t slot_addr[MAX_SLOTS];
static unsigned int nr_slots = FIRST_SLOT;
static GMutex lock;			/* slots, slot_addr, nr_slots */
static char *out_path;
static char *ctl_path;

static qemu_plugin_u64 slot_counter(unsigned int slot)
{
	qemu_plugin_u64 c = { .score = counts,
			      .offset = slot * sizeof(uint64_t) };
	return c;
}

/* Slot of a kernel block; blocks of different lengths differ in key */
static unsigned int kernel_slot(uint64_t addr, size_t insns)
{
	gpointer key = GSIZE_TO_POINTER(addr ^ ((uint64_t)insns << 48));
	unsigned int slot;

	g_mutex_lock(&lock);
	slot = GPOINTER_TO_UINT(g_hash_table_lookup(slots, key));
	if (slot) {
		slot--;
	} else if (nr_slots < MAX_SLOTS) {
		slot = nr_slots++;
		slot_addr[slot] = addr;
		g_hash_table_insert(slots, key, GUINT_TO_POINTER(slot + 1));
	} else {
		slot = SLOT_LOST;
	}
	g_mutex_unlock(&lock);
	return slot;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t addr = qemu_plugin_tb_vaddr(tb);
	size_t insns = qemu_plugin_tb_n_insns(tb);
	unsigned int slot = SLOT_USER;

	if (addr >= KERNEL_START)
		slot = kernel_slot(addr, insns);
	qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
		tb, QEMU_PLUGIN_INLINE_ADD_U64, slot_counter(slot), insns);
}

/* Write every slot that ran to @path; false on an I/O error */
static bool dump(const char *path)
{
	g_autofree char *tmp = g_strdup_printf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	unsigned int slot, n;
	bool ok;

	if (!f)
		return false;
	fprintf(f, "user %" PRIu64 "\n",
		qemu_plugin_u64_sum(slot_counter(SLOT_USER)));
	fprintf(f, "lost %" PRIu64 "\n",
		qemu_plugin_u64_sum(slot_counter(SLOT_LOST)));
	g_mutex_lock(&lock);
	n = nr_slots;
	g_mutex_unlock(&lock);
	for (slot = FIRST_SLOT; slot < n; slot++) {
		uint64_t count = qemu_plugin_u64_sum(slot_counter(slot));

		if (count)
			fprintf(f, "%" PRIx64 " %" PRIu64 "\n", slot_addr[slot],
				count);
	}
	ok = !ferror(f);
	if (fclose(f) || !ok || rename(tmp, path)) {
		unlink(tmp);
		return false;
	}
	return true;
}

/* Serve "snap PATH" requests from the control FIFO until QEMU exits */
static gpointer ctl_thread(gpointer data)
{
	char line[4096];

	for (;;) {
		FILE *f = fopen(ctl_path, "r");

		if (!f) {
			qemu_plugin_outs("symprof: cannot open the control FIFO\n");
			return NULL;
		}
		while (fgets(line, sizeof(line), f)) {
			g_strchomp(line);
			if (strncmp(line, "snap ", 5) || !dump(line + 5))
				qemu_plugin_outs("symprof: bad or failed request\n");
		}
		fclose(f);
	}
	return NULL;
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
	if (!dump(out_path))
		qemu_plugin_outs("symprof: writing the output file failed\n");
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
					   const qemu_info_t *info,
					   int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4) && argv[i][4]) {
			out_path = g_strdup(argv[i] + 4);
		} else if (!strncmp(argv[i], "ctl=", 4) && argv[i][4]) {
			ctl_path = g_strdup(argv[i] + 4);
		} else {
			fprintf(stderr,
				"symprof: unknown option '%s' (want out=PATH, ctl=FIFO)\n",
				argv[i]);
			return -1;
		}
	}
	if (!out_path) {
		fprintf(stderr, "symprof: out=PATH is required\n");
		return -1;
	}

	counts = qemu_plugin_scoreboard_new(MAX_SLOTS * sizeof(uint64_t));
	slots = g_hash_table_new(g_direct_hash, g_direct_equal);
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	if (ctl_path)
		g_thread_unref(g_thread_new("symprof-ctl", ctl_thread, NULL));
	return 0;
}
