// SPDX-License-Identifier: GPL-2.0
/*
 * Test module for the bench's VM runner: loading it triggers a real
 * WARN(), which tools/vmrun must report as a failed run even though the
 * command inside the guest succeeds.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/module.h>

static int __init vmrun_warn_init(void)
{
	WARN(1, "deliberate warning from the vmrun self-test\n");
	return 0;
}

static void __exit vmrun_warn_exit(void)
{
}

module_init(vmrun_warn_init);
module_exit(vmrun_warn_exit);
MODULE_DESCRIPTION("Triggers a WARN() to test the VM runner's failure detection");
MODULE_LICENSE("GPL");
