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
             initramfs, each on the path its device asks for: root
             without VIRTIO_BLK_F_BIO (bio=off) on the request path, data
             with the bit and a pinned non-rotating, fast medium on the
             bio path; random data goes onto the data disk
  sig-enforce  module.sig_enforce=1 (what Secure Boot does with a key that
             is not enrolled): the adaptive module is refused and the boot
             script of the package loads the in-tree one; the data reads back
  off        vblk_adaptive=off on the command line (the documented way
             back): the in-tree driver
  purged     after dpkg --purge (offline): the in-tree driver, no hook, the
             initramfs without updates/; the data reads back

Every wait is bounded; on failure the work directory (images, consoles,
reports) is kept and its path printed.
"""

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
            "-device", "virtio-blk-pci,id=data,drive=n-data,serial=data,bio=on,"
            # the medium pinned: the path must not depend on the probe
            "x-test-rotation-rate=1,x-test-read-latency-hint=45"]
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
            shutil.copy(deb, f"{mnt}/tmp/")
            rc, log = m.chroot(["dpkg", "-i", f"/tmp/{os.path.basename(deb)}"], 1800)
            with open(os.path.join(work, "dpkg-install.log"), "w") as f:
                f.write(log)
            os.unlink(f"{mnt}/tmp/{os.path.basename(deb)}")
            if not add(rc == 0, "dpkg-install", log):
                return
            ours = f"/lib/modules/{kver}/updates/dkms"
            rc, log = m.chroot(["sh", "-c", f"ls {ours}/virtio_blk.ko* && "
                                f"modinfo -F version {ours}/virtio_blk.ko* && "
                                f"modinfo -k {kver} -n virtio_blk && "
                                f"modinfo -k {kver} -F srcversion virtio_blk && "
                                "dkms status"], 60)
            lines = log.split()
            add(rc == 0 and ver in lines and f"{ours}/" in log
                and re.search(rf"^vblk-adaptive/{re.escape(ver)}, {re.escape(kver)}, "
                              r"x86_64: installed", log, re.M) is not None,
                "dkms-installed", log)
            srcv = re.search(r"^([0-9A-F]{20,})$", log, re.M)
            mods, listing = initramfs_modules(m, kver)
            has_ours = any("/updates/" in x for x in mods)
            has_intree = any("/kernel/drivers/block/" in x for x in mods)
            add(has_ours and has_intree and "scripts/init-top/vblk-adaptive" in listing,
                "initramfs-has-adaptive", "virtio_blk in the initramfs: " + " ".join(mods))
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
            rep, disks, secs, console = boot(work, tag, kernel, initrd, append)
            g.comment(f"boot {tag}: {secs:.0f} s to power-off")
            byser = {d.get("serial"): d for d in disks}
            common = []
            if "end" not in rep:
                common.append("the report did not finish")
            if rep.get("root") != "/dev/vda":
                common.append(f"root is {rep.get('root')}, want /dev/vda")
            if set(byser) != {"root", "data"}:
                common.append(f"disks seen: {disks}")
            dt = rep.get("default-target", "").split()
            if len(dt) != 2 or dt[1] != "active":
                common.append(f"default target: {rep.get('default-target')} "
                              f"(system {rep.get('system-state')}, failed units: "
                              f"{rep.get('failed-units')})")
            ctx = "\n".join(common + [f"{k}: {v}" for k, v in rep.items()] +
                            [str(d) for d in disks] + [f"console: {console}"])
            add(not common, f"boot-{tag}", ctx)
            if tag == "adaptive":
                checks = [rep.get("module-io_path-param") == "auto",
                          rep.get("module-version") == ver,
                          "O" in rep.get("module-taint", ""),
                          srcv is not None and rep.get("module-srcversion") == srcv.group(1),
                          rep.get("modinfo-path", "").startswith(f"/lib/modules/{kver}/updates/")]
                add(all(checks), "adaptive-from-initramfs", ctx)
                r, d = byser.get("root", {}), byser.get("data", {})
                # vblk-report writes the reason with '_' for ' '
                add(r.get("io_path") == "request"
                    and r.get("reason") == "device_does_not_offer_VIRTIO_BLK_F_BIO"
                    and d.get("io_path") == "bio"
                    and d.get("reason") == "read_latency_hint_45_us_<=_200_us",
                    "paths-follow-the-medium", ctx)
                want_sha = data_sha(f"{work}/data.img")
                add(bool(rep.get("data-written")) and rep.get("data-sha256") == want_sha,
                    "data-written", ctx + f"\nhost sha256 {want_sha}")
            else:
                intree = (rep.get("module-loaded") == "yes"
                          and rep.get("module-io_path-param") == "none"
                          and "O" not in rep.get("module-taint", "")
                          and all(d.get("io_path") == "none" for d in disks))
                if tag == "sig-enforce":
                    intree = intree and int(rep.get("sig-rejected", "0") or 0) > 0
                add(intree, f"{tag}-in-tree", ctx)
                add(want_sha is not None and rep.get("data-sha256") == want_sha,
                    f"{tag}-data-reads-back", ctx)

        # 5. purge offline, boot again
        t0 = time.time()
        with Mounted(f"{work}/root.img", mnt) as m:
            rc, log = m.chroot(["dpkg", "--purge", "vblk-adaptive-dkms"], 1800)
            with open(os.path.join(work, "dpkg-purge.log"), "w") as f:
                f.write(log)
            add(rc == 0, "dpkg-purge", log)
            rc, left = m.chroot(["sh", "-c", f"find /lib/modules/{kver}/updates "
                                 "/var/lib/dkms/vblk-adaptive /usr/src/vblk-adaptive-*"
                                 " /usr/share/initramfs-tools/hooks/vblk-adaptive"
                                 f" -print 2>/dev/null; modinfo -k {kver} -n virtio_blk"], 60)
            add(f"/lib/modules/{kver}/kernel/drivers/block/virtio_blk.ko" in left
                and "vblk-adaptive" not in left and "virtio_blk.ko" not in
                left.replace(f"/lib/modules/{kver}/kernel/drivers/block/virtio_blk.ko", ""),
                "purge-removes-module", left)
            mods, listing = initramfs_modules(m, kver)
            add(mods and all("/kernel/drivers/block/" in x for x in mods)
                and "vblk-adaptive" not in listing,
                "initramfs-in-tree-only", " ".join(mods))
            kernel, initrd = boot_files(m, kver, work, "purged")
        g.comment(f"offline purge in {time.time() - t0:.0f} s")
        rep, disks, secs, console = boot(work, "purged", kernel, initrd, "")
        g.comment(f"boot purged: {secs:.0f} s to power-off")
        ctx = "\n".join([f"{k}: {v}" for k, v in rep.items()] + [str(d) for d in disks] +
                        [f"console: {console}"])
        dt = rep.get("default-target", "").split()
        add("end" in rep and rep.get("root") == "/dev/vda" and len(dt) == 2
            and dt[1] == "active", "boot-purged", ctx)
        add(rep.get("module-loaded") == "yes" and rep.get("module-io_path-param") == "none"
            and "O" not in rep.get("module-taint", "") and len(disks) == 2
            and all(d.get("io_path") == "none" for d in disks), "purged-in-tree", ctx)
        add(want_sha is not None and rep.get("data-sha256") == want_sha,
            "purged-data-reads-back", ctx)
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
