# SPDX-License-Identifier: GPL-2.0
#
# vblk-adaptive entry points.
#
#   make demo     boot a guest with several disk classes and show, per disk,
#                 what the host decided and which guest path is in use
#   make check    every test (static, qtests, runner, in-guest kselftests)
#   make          build guest/virtio_blk.ko for the running kernel
#   make install  install it into /lib/modules/$(uname -r)/updates
#
# demo and check install what they need on a Debian 12 host by themselves
# (tools/host-setup.sh) and keep downloads and builds in /var/cache.
# The kernel module itself is described by ./Kbuild.

KDIR ?= /lib/modules/$(shell uname -r)/build
PYTHON := /usr/bin/python3

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=updates modules_install
	depmod -a $(shell $(MAKE) -s -C $(KDIR) kernelrelease 2>/dev/null || uname -r)

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

.PHONY: all modules install clean module setup check demo bench
