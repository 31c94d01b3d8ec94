# SPDX-License-Identifier: GPL-2.0
#
# vblk-adaptive entry points.
#
#   make demo     boot a guest with several disk classes and show, per disk,
#                 what the host decided, the path our driver chooses and a
#                 few seconds of fio under stock, request and bio; writes a
#                 chart and JSON into out/demo
#   make check    every test (static, qtests, runner, in-guest kselftests)
#   make          build guest/virtio_blk.ko for the running kernel
#   make install  install it into /lib/modules/$(uname -r)/updates and run
#                 depmod; KDIR=... installs for that kernel instead, and
#                 INSTALL_MOD_PATH=DIR (or DESTDIR=DIR) under DIR
#   make uninstall  remove what make install put there (same variables)
#   make docs     the HTML documentation in out/docs (Sphinx, warnings fail)
#   make deb      the Debian package vblk-adaptive-dkms (DKMS sources, the
#                 initramfs hook) in out/deb, built offline with dpkg-deb
#
# demo and check install what they need on a Debian 12 host by themselves
# (tools/host-setup.sh) and keep downloads and builds in /var/cache.
# The kernel module itself is described by ./Kbuild.

KDIR ?= /lib/modules/$(shell uname -r)/build
PYTHON := /usr/bin/python3
# Staged installs: kbuild's INSTALL_MOD_PATH, or DESTDIR as packagers spell it.
INSTALL_MOD_PATH ?= $(DESTDIR)
# The release of the kernel in KDIR, which need not be the running one.
KRELEASE = $(shell $(MAKE) -s -C $(KDIR) kernelrelease 2>/dev/null)

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# updates/ is searched before the kernel's own modules (depmod's default
# order), so modprobe and udev pick this virtio_blk.  kbuild skips depmod
# for external modules when KDIR has no System.map (distribution headers),
# hence our own run, rooted where the module went.
install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=updates \
		INSTALL_MOD_PATH=$(INSTALL_MOD_PATH) modules_install
	@release="$(KRELEASE)"; [ -n "$$release" ] || \
		{ echo "cannot read the kernel release of $(KDIR)" >&2; exit 1; }; \
	echo "depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH) )$$release"; \
	depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) "$$release"

# The reverse of install for the release of KDIR: the module leaves
# updates/ and depmod runs again, so virtio_blk is the in-tree driver again.
uninstall:
	@release="$(KRELEASE)"; [ -n "$$release" ] || \
		{ echo "cannot read the kernel release of $(KDIR)" >&2; exit 1; }; \
	dir="$(INSTALL_MOD_PATH)/lib/modules/$$release/updates/guest"; \
	found=$$(find "$$dir" -maxdepth 1 -name 'virtio_blk.ko*' 2>/dev/null); \
	[ -n "$$found" ] || { echo "no virtio_blk module in $$dir: nothing to uninstall" >&2; \
		exit 1; }; \
	echo "rm $$found"; rm -f $$found; rmdir "$$dir" 2>/dev/null || true; \
	echo "depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH) )$$release"; \
	depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) "$$release"

docs:
	$(PYTHON) -m sphinx -W --keep-going -q -b html -d out/docs/.doctrees \
		Documentation out/docs

deb:
	bash tools/mkdeb.sh

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null || true
	$(MAKE) -C selftests clean

# The bench: the module against the guest kernel's headers, W=1.
module:
	bash tools/build-module.sh

setup:
	bash tools/host-setup.sh

check: setup
	$(PYTHON) tools/check.py

demo: setup
	$(PYTHON) tools/demo.py

bench: setup
	$(PYTHON) tools/bench/bench.py

.PHONY: all modules install uninstall docs deb clean module setup check demo bench
