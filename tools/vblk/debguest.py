# SPDX-License-Identifier: GPL-2.0
"""The debian-guest group: the Debian package on a real Debian guest.

make deb's package is checked on the host (control fields, version, the
files it ships, its maintainer scripts), then installed offline (dpkg -i
in a chroot on the host, so DKMS builds at native speed and
update-initramfs runs there) into a copy of the cached bookworm image
(tools/mkdebimage.sh) whose root is a virtio disk.  The guest boots from
the image's own kernel and initramfs under TCG with a second, data disk;
tools/guest/debian/vblk-report reports over the second serial port and
powers off.  Boots:

  adaptive   the adaptive module drives both disks, loaded from the
             initramfs, each on the path its medium asks for (root: no
             VIRTIO_BLK_F_BIO; data: non-rotating, 45 us read latency);
             random data goes onto the data disk
  sig-enforce  module.sig_enforce=1 (what Secure Boot does with a key that
             is not enrolled): the adaptive module is refused and the boot
             script of the package loads the in-tree one; the data reads back
  off        vblk_adaptive=off on the command line (the documented way
             back): the in-tree driver
  later      a later 6.12 kernel installed (offline) after the package
             (tools/get-later-kernel.sh): DKMS autoinstall built the module
             for it, its initramfs carries it, and it drives both disks
  purged     after dpkg --purge (offline), booting the later kernel: the
             in-tree driver, no hook, both kernels' initramfs without
             updates/; the data reads back

Every wait is bounded; on failure the work directory (images, consoles,
reports) is kept and its path printed.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time

from .paths import FIRMWARE, QEMU, ROOT, TOOLS
from .vm import host_lpj

GUEST_DIR = os.path.join(TOOLS, "guest", "debian")
DATA_MB = 16            # tools/guest/debian/vblk-report's VBLK_DATA_MB
# Under TCG on a busy 2-core host a boot to the report takes a few
# minutes; the bound is generous, and a boot that exceeds it fails.
BOOT_TIMEOUT = 1200


def _run(cmd, timeout, **kw):
    """Run @cmd, bounded; return (status, output)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout, **kw)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return 124, out + f"\n(timed out after {timeout} s: {cmd[0]})"


def dkms_version():
    with open(os.path.join(ROOT, "dkms.conf")) as f:
        return re.search(r'^PACKAGE_VERSION="(.*)"$', f.read(), re.M).group(1)


# -- the package on the host ------------------------------------------------
def check_deb(deb, ver):
    """Problems with the built package, as a list of strings."""
    bad = []
    rc, ctl = _run(["dpkg-deb", "-f", deb], 60)
    if rc:
        return [f"dpkg-deb -f: {ctl}"]
    fields = dict(re.findall(r"^(\S+): (.*)$", ctl, re.M))
    want = {"Package": "vblk-adaptive-dkms", "Version": ver, "Architecture": "all"}
    for k, v in want.items():
        if fields.get(k) != v:
            bad.append(f"{k}: {fields.get(k)!r}, want {v!r}")
    if not re.match(r"dkms\b", fields.get("Depends", "")):
        bad.append(f"Depends: {fields.get('Depends')!r} does not start with dkms")
    rc, listing = _run(["dpkg-deb", "-c", deb], 60)
    files = {ln.split()[-1].lstrip(".") for ln in listing.splitlines()
             if ln.startswith("-")}
    src = f"/usr/src/vblk-adaptive-{ver}"
    rc, tracked = _run(["git", "-C", ROOT, "ls-files", "--", "Kbuild", "Makefile",
                        "dkms.conf", "guest", "include"], 60)
    for t in tracked.split():
        if f"{src}/{t}" not in files:
            bad.append(f"missing {src}/{t}")
    for f in ("/usr/share/initramfs-tools/hooks/vblk-adaptive",
              "/usr/share/initramfs-tools/scripts/init-top/vblk-adaptive",
              "/usr/lib/dracut/dracut.conf.d/50-vblk-adaptive.conf"):
        if f not in files:
            bad.append(f"missing {f}")
    built = [f for f in files if re.search(r"\.(o|ko|mod|cmd)$|\.mod\.c$", f)]
    if built:
        bad.append(f"build products shipped: {built[:5]}")
    with tempfile.TemporaryDirectory(prefix="vblk-debctl-", dir="/var/tmp") as d:
        rc, msg = _run(["dpkg-deb", "-e", deb, d], 60)
        for s in ("postinst", "prerm", "postrm"):
            p = os.path.join(d, s)
            if not os.access(p, os.X_OK):
                bad.append(f"no executable {s}")
                continue
            text = open(p).read()
            if "@VERSION@" in text:
                bad.append(f"{s}: @VERSION@ not substituted")
            rc, msg = _run(["sh", "-n", p], 60)
            if rc:
                bad.append(f"{s}: sh -n: {msg}")
        post = open(os.path.join(d, "postinst")).read()
        for need in ("dkms install", "update-initramfs"):
            if need not in post:
                bad.append(f"postinst does not run {need}")
    dconf = open(os.path.join(ROOT, "dkms.conf")).read()
    if not re.search(r'^AUTOINSTALL="yes"', dconf, re.M):
        bad.append("dkms.conf lacks AUTOINSTALL=\"yes\" (kernels installed later)")
    return bad


# -- the image, offline -----------------------------------------------------
class Mounted:
    """The root image loop-mounted, with what a chroot needs."""

    def __init__(self, image, mnt):
        self.image, self.mnt, self.mounts = image, mnt, []

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        self._mount(["mount", "-o", "loop", self.image, self.mnt], self.mnt)
        for fs, sub in (("proc", "proc"), ("sysfs", "sys")):
            self._mount(["mount", "-t", fs, fs, f"{self.mnt}/{sub}"], f"{self.mnt}/{sub}")
        self._mount(["mount", "--bind", "/dev", f"{self.mnt}/dev"], f"{self.mnt}/dev")
        return self

    def _mount(self, cmd, where):
        rc, msg = _run(cmd, 60)
        if rc:
            raise RuntimeError(f"{' '.join(cmd)}: {msg}")
        self.mounts.append(where)

    def chroot(self, cmd, timeout):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
               "LC_ALL": "C.UTF-8", "HOME": "/root"}
        return _run(["chroot", self.mnt] + cmd, timeout, env=env)

    def __exit__(self, *exc):
        for m in reversed(self.mounts):
            if subprocess.run(["umount", m], capture_output=True, timeout=120).returncode:
                subprocess.run(["umount", "-l", m], capture_output=True, timeout=120)
        self.mounts = []


def mounts_under(path):
    """Mount points below @path (a work directory must have none before
    it is deleted: /dev is bound into the chroot)."""
    with open("/proc/mounts") as f:
        return [ln.split()[1] for ln in f if ln.split()[1].startswith(path.rstrip("/") + "/")]


def boot_files(m, kver, work, tag):
    """Copy the image's kernel and initramfs out for -kernel/-initrd."""
    k = os.path.join(work, f"vmlinuz-{tag}")
    i = os.path.join(work, f"initrd-{tag}.img")
    shutil.copy(f"{m.mnt}/boot/vmlinuz-{kver}", k)
    shutil.copy(f"{m.mnt}/boot/initrd.img-{kver}", i)
    return k, i


def initramfs_modules(m, kver):
    """The virtio_blk files in the image's initramfs (lsinitramfs there)."""
    rc, out = m.chroot(["lsinitramfs", f"/boot/initrd.img-{kver}"], 300)
    if rc:
        raise RuntimeError(f"lsinitramfs: {out[-2000:]}")
    return sorted(ln for ln in out.split() if re.search(r"/virtio_blk\.ko", ln)), out


def dkms_built(m, ver, kver):
    """Whether DKMS built and installed the package's module for @kver:
    (ok, the module's srcversion match, the evidence)."""
    ours = f"/lib/modules/{kver}/updates/dkms"
    rc, log = m.chroot(["sh", "-c", f"ls {ours}/virtio_blk.ko* && "
                        f"modinfo -F version {ours}/virtio_blk.ko* && "
                        f"modinfo -k {kver} -n virtio_blk && "
                        f"modinfo -k {kver} -F srcversion virtio_blk && "
                        "dkms status"], 60)
    ok = (rc == 0 and ver in log.split() and f"{ours}/" in log
          and re.search(rf"^vblk-adaptive/{re.escape(ver)}, {re.escape(kver)}, "
                        r"x86_64: installed", log, re.M) is not None)
    return ok, re.search(r"^([0-9A-F]{20,})$", log, re.M), log


def check_adaptive_installed(m, add, ver, kver, names):
    """Add the two tests @names: DKMS built and installed the package's
    module for @kver, and @kver's initramfs carries both modules and the
    package's boot script.  Return the srcversion match of the module."""
    ok, srcv, log = dkms_built(m, ver, kver)
    add(ok, names[0], log)
    mods, listing = initramfs_modules(m, kver)
    add(any("/updates/" in x for x in mods)
        and any("/kernel/drivers/block/" in x for x in mods)
        and "scripts/init-top/vblk-adaptive" in listing,
        names[1], "virtio_blk in the initramfs: " + " ".join(mods))
    return srcv


def dpkg_install(m, debs, logfile):
    """dpkg -i @debs in the image, their copies removed after; the log is
    kept in @logfile.  Return (status, log)."""
    tmp = f"{m.mnt}/tmp/vblk-debs"
    os.makedirs(tmp, exist_ok=True)
    for d in debs:
        shutil.copy(d, tmp)
    names = [f"/tmp/vblk-debs/{os.path.basename(d)}" for d in debs]
    rc, log = m.chroot(["dpkg", "-i"] + names, 3600)
    with open(logfile, "w") as f:
        f.write(log)
    shutil.rmtree(tmp)
    return rc, log


# -- a boot -----------------------------------------------------------------
def boot(work, tag, kernel, initrd, append, timeout=BOOT_TIMEOUT):
    """Boot the image under TCG until the guest powers off; return
    (report dict, list of disk dicts, seconds, console path)."""
    console = os.path.join(work, f"console-{tag}.log")
    report = os.path.join(work, f"report-{tag}.log")
    lpj = host_lpj()
    cmdline = (f"root=/dev/vda rw console=ttyS0 panic=-1 {f'lpj={lpj}' if lpj else ''} "
               f"{append}").strip()
    args = [QEMU, "-accel", "tcg,thread=multi", "-machine", "pc", "-cpu", "max",
            "-smp", "2", "-m", "1G", "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-L", FIRMWARE, "-kernel", kernel, "-initrd", initrd,
            "-append", cmdline,
            "-serial", f"file:{console}", "-serial", f"file:{report}",
            "-blockdev", f"driver=raw,node-name=n-root,file.driver=file,"
            f"file.filename={work}/root.img",
            "-device", "virtio-blk-pci,id=root,drive=n-root,serial=root,bio=off",
            "-blockdev", f"driver=raw,node-name=n-data,file.driver=file,"
            f"file.filename={work}/data.img",
            # The data disk's medium is pinned: a non-rotating disk
            # (rotation_rate, libvirt's knob) whose reads take 45 us, so
            # its path does not depend on how fast a busy host answers.
            "-device", "virtio-blk-pci,id=data,drive=n-data,serial=data,bio=on,"
            "rotation_rate=1,x-test-read-latency-hint=45"]
    with open(os.path.join(work, f"qemu-{tag}.cmdline"), "w") as f:
        f.write(" ".join(args) + "\n")
    t0 = time.time()
    with open(os.path.join(work, f"qemu-{tag}.log"), "w") as qlog:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=qlog,
                             stderr=subprocess.STDOUT)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise RuntimeError(f"boot {tag}: no power-off within {timeout} s "
                               f"(console: {console})")
    secs = time.time() - t0
    rep, disks = {}, []
    with open(report, errors="replace") as f:
        for ln in f:
            parts = ln.rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or parts[0] != "VBLK":
                continue
            if parts[1] == "disk":
                w = parts[2].split() if len(parts) > 2 else []
                d = {"name": w[0] if w else ""}
                d.update(dict(zip(w[1::2], w[2::2])))
                disks.append(d)
            else:
                rep[parts[1]] = parts[2] if len(parts) > 2 else ""
    return rep, disks, secs, console


def data_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(DATA_MB << 20))
    return h.hexdigest()


def later_kver(debs):
    """The kernel release of the linux-image package among @debs."""
    for d in debs:
        rc, pkg = _run(["dpkg-deb", "-f", d, "Package"], 60)
        m = re.match(r"linux-image-(\S+)-unsigned$", pkg.strip()) if rc == 0 else None
        if m:
            return m.group(1)
    return None


def boot_problems(rep, disks, console, kver):
    """What is wrong with any boot's report, and the report as text."""
    byser = {d.get("serial"): d for d in disks}
    bad = []
    if "end" not in rep:
        bad.append("the report did not finish")
    if rep.get("kernel") != kver:
        bad.append(f"kernel {rep.get('kernel')}, want {kver}")
    if rep.get("root") != "/dev/vda":
        bad.append(f"root is {rep.get('root')}, want /dev/vda")
    if set(byser) != {"root", "data"}:
        bad.append(f"disks seen: {disks}")
    dt = rep.get("default-target", "").split()
    if len(dt) != 2 or dt[1] != "active":
        bad.append(f"default target: {rep.get('default-target')} "
                   f"(system {rep.get('system-state')}, failed units: "
                   f"{rep.get('failed-units')})")
    ctx = "\n".join(bad + [f"{k}: {v}" for k, v in rep.items()] +
                     [str(d) for d in disks] + [f"console: {console}"])
    return bad, ctx


def adaptive_problems(rep, ver, kver, srcv):
    """Why the running virtio_blk is not the package's module for @kver."""
    bad = []
    if rep.get("module-io_path-param") != "auto":
        bad.append("no io_path parameter: not the adaptive module")
    if rep.get("module-version") != ver:
        bad.append(f"module version {rep.get('module-version')}, want {ver}")
    if "O" not in rep.get("module-taint", ""):
        bad.append("module not tainted O (out of tree)")
    if srcv is None or rep.get("module-srcversion") != srcv.group(1):
        bad.append("srcversion differs from the module DKMS built")
    if not rep.get("modinfo-path", "").startswith(f"/lib/modules/{kver}/updates/"):
        bad.append(f"modinfo path {rep.get('modinfo-path')}, want under updates/")
    return bad


def paths_follow_hints(disks):
    """The root disk (bio=off: no media information) on the request path,
    the data disk (non-rotating, 45 us) on the bio path, each for the
    reason its host gave (io_path_reason, blanks as "_")."""
    byser = {d.get("serial"): d for d in disks}
    r, d = byser.get("root", {}), byser.get("data", {})
    return (r.get("io_path") == "request"
            and r.get("reason") == "device_does_not_offer_VIRTIO_BLK_F_BIO"
            and d.get("io_path") == "bio"
            and d.get("reason") == "read_latency_hint_45_us_<=_200_us")


def in_tree(rep, disks):
    """The in-tree driver drives both disks."""
    return (rep.get("module-loaded") == "yes"
            and rep.get("module-io_path-param") == "none"
            and "O" not in rep.get("module-taint", "")
            and len(disks) == 2
            and all(d.get("io_path") == "none" for d in disks))


# -- the group --------------------------------------------------------------
def run(g, state):
    """The debian-guest group; @g is check.Group."""
    ver = dkms_version()
    work = tempfile.mkdtemp(prefix="vblk-debian-guest-", dir="/var/tmp")
    ok_all = True

    def add(ok, name, log=""):
        nonlocal ok_all
        ok_all = ok_all and ok
        g.add(ok, name, log=log)
        return ok

    def boot_checked(tag, kernel, initrd, append, k):
        """Boot, add boot-@tag (the system came up on kernel @k)."""
        rep, disks, secs, console = boot(work, tag, kernel, initrd, append)
        g.comment(f"boot {tag}: {secs:.0f} s to power-off")
        common, ctx = boot_problems(rep, disks, console, k)
        add(not common, f"boot-{tag}", ctx)
        return rep, disks, ctx

    def reads_back(name, rep, ctx):
        add(want_sha is not None and rep.get("data-sha256") == want_sha, name, ctx)

    try:
        # 1. the package, on the host
        t0 = time.time()
        rc, log = _run(["bash", f"{TOOLS}/mkdeb.sh", work], 300)
        deb = log.strip().splitlines()[-1] if rc == 0 else ""
        if not add(rc == 0 and deb.endswith(".deb"), "deb-build", log):
            return
        bad = check_deb(deb, ver)
        add(not bad, "deb-contents", "\n".join(bad))
        g.comment(f"deb built and checked in {time.time() - t0:.0f} s")

        # 2. the image (cached; the first build downloads and installs)
        if not state.get("qemu-build"):
            add(False, "image", "the QEMU build is missing")
            return
        t0 = time.time()
        p = subprocess.run(["bash", f"{TOOLS}/mkdebimage.sh"], stdout=subprocess.PIPE,
                           text=True, timeout=3600)
        if not add(p.returncode == 0, "image", p.stdout):
            return
        imgdir = p.stdout.strip().splitlines()[-1]
        with open(os.path.join(imgdir, "kver")) as f:
            kver = f.read().strip()
        g.comment(f"image {imgdir} ({kver}) ready in {time.time() - t0:.0f} s")
        rc, log = _run(["cp", "--sparse=always", f"{imgdir}/root.img", f"{work}/root.img"], 600)
        if not add(rc == 0, "image-copy", log):
            return
        with open(f"{work}/data.img", "wb") as f:
            f.truncate(64 << 20)

        # 3. install offline
        t0 = time.time()
        mnt = os.path.join(work, "mnt")
        with Mounted(f"{work}/root.img", mnt) as m:
            rc, log = dpkg_install(m, [deb], os.path.join(work, "dpkg-install.log"))
            if not add(rc == 0, "dpkg-install", log):
                return
            srcv = check_adaptive_installed(m, add, ver, kver,
                                            ("dkms-installed", "initramfs-has-adaptive"))
            for f in ("vblk-report",):
                shutil.copy(os.path.join(GUEST_DIR, f), f"{mnt}/usr/local/sbin/{f}")
            shutil.copy(os.path.join(GUEST_DIR, "vblk-report.service"),
                        f"{mnt}/etc/systemd/system/")
            rc, log = m.chroot(["systemctl", "enable", "vblk-report.service"], 60)
            if not add(rc == 0, "report-unit", log):
                return
            kernel, initrd = boot_files(m, kver, work, "adaptive")
        g.comment(f"offline install in {time.time() - t0:.0f} s")

        # 4. boots with the package
        want_sha = None
        for tag, append in (("adaptive", "vblk.data=write"),
                            ("sig-enforce", "module.sig_enforce=1"),
                            ("off", "vblk_adaptive=off")):
            rep, disks, ctx = boot_checked(tag, kernel, initrd, append, kver)
            if tag == "adaptive":
                add(adaptive_problems(rep, ver, kver, srcv) == [], "adaptive-from-initramfs",
                    "\n".join(adaptive_problems(rep, ver, kver, srcv)) + "\n" + ctx)
                add(paths_follow_hints(disks), "paths-follow-hints", ctx)
                want_sha = data_sha(f"{work}/data.img")
                add(bool(rep.get("data-written")) and rep.get("data-sha256") == want_sha,
                    "data-written", ctx + f"\nhost sha256 {want_sha}")
            else:
                intree = in_tree(rep, disks)
                if tag == "sig-enforce":
                    intree = intree and int(rep.get("sig-rejected", "0") or 0) > 0
                add(intree, f"{tag}-in-tree", ctx)
                reads_back(f"{tag}-data-reads-back", rep, ctx)

        # 5. a kernel installed after the package: DKMS autoinstall builds
        # the module for it and its initramfs carries the adaptive driver
        t0 = time.time()
        rc, log = _run(["bash", f"{TOOLS}/get-later-kernel.sh", kver], 1800)
        ldir = log.strip().splitlines()[-1] if rc == 0 and log.strip() else ""
        debs = sorted(glob.glob(os.path.join(ldir, "*.deb"))) if ldir else []
        if not add(len(debs) == 4, "later-kernel-download", log):
            return
        newk = later_kver(debs)
        if not add(newk is not None and newk != kver, "later-kernel-version",
                   f"packages: {debs}\nkernel: {newk}"):
            return
        with Mounted(f"{work}/root.img", mnt) as m:
            rc, log = dpkg_install(m, debs, os.path.join(work, "dpkg-later-kernel.log"))
            if not add(rc == 0, "later-kernel-install", log):
                return
            nsrcv = check_adaptive_installed(m, add, ver, newk,
                                             ("later-kernel-dkms", "later-kernel-initramfs"))
            nkernel, ninitrd = boot_files(m, newk, work, "later")
        g.comment(f"later kernel {newk} installed offline in {time.time() - t0:.0f} s")
        rep, disks, ctx = boot_checked("later", nkernel, ninitrd, "", newk)
        bad = adaptive_problems(rep, ver, newk, nsrcv)
        add(not bad, "later-adaptive-from-initramfs", "\n".join(bad) + "\n" + ctx)
        add(paths_follow_hints(disks), "later-paths-follow-hints", ctx)
        reads_back("later-data-reads-back", rep, ctx)

        # 6. purge offline: both kernels lose the module and get an
        # initramfs with the in-tree driver; boot the later one
        t0 = time.time()
        with Mounted(f"{work}/root.img", mnt) as m:
            rc, log = m.chroot(["dpkg", "--purge", "vblk-adaptive-dkms"], 1800)
            with open(os.path.join(work, "dpkg-purge.log"), "w") as f:
                f.write(log)
            add(rc == 0, "dpkg-purge", log)
            for k in (kver, newk):
                intree_ko = f"/lib/modules/{k}/kernel/drivers/block/virtio_blk.ko"
                rc, left = m.chroot(["sh", "-c", f"find /lib/modules/{k}/updates "
                                     "/var/lib/dkms/vblk-adaptive /usr/src/vblk-adaptive-*"
                                     " /usr/share/initramfs-tools/hooks/vblk-adaptive"
                                     f" -print 2>/dev/null; modinfo -k {k} -n virtio_blk"],
                                    60)
                add(intree_ko in left and "vblk-adaptive" not in left
                    and "virtio_blk.ko" not in left.replace(intree_ko, ""),
                    f"purge-removes-module {k}", left)
                mods, listing = initramfs_modules(m, k)
                add(mods and all("/kernel/drivers/block/" in x for x in mods)
                    and "vblk-adaptive" not in listing,
                    f"initramfs-in-tree-only {k}", " ".join(mods))
            kernel, initrd = boot_files(m, newk, work, "purged")
        g.comment(f"offline purge in {time.time() - t0:.0f} s")
        rep, disks, ctx = boot_checked("purged", kernel, initrd, "", newk)
        add(in_tree(rep, disks), "purged-in-tree", ctx)
        reads_back("purged-data-reads-back", rep, ctx)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        add(False, "debian-guest", str(e))
    finally:
        left = mounts_under(work)
        if left:
            g.add(False, "unmounted", f"still mounted, {work} not deleted: {left}")
        elif ok_all:
            shutil.rmtree(work, ignore_errors=True)
        if left or not ok_all:
            g.comment(f"kept for inspection: {work}")
