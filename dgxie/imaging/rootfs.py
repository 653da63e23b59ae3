"""A bootstrapped root file system as a deployable image: `rootfs.tar.zst`, kernel and initrd.

The tarball is made by GNU tar in POSIX (pax) format so extended attributes travel (file
capabilities such as ping's `security.capability`): `--xattrs --xattrs-include=*`, numeric owners,
entries sorted by name, every mtime clamped to the snapshot's time, atime/ctime left out, one file
system only; then zstd. The agent unpacks it with
`zstd -dc | tar -x --xattrs --xattrs-include='*' --numeric-owner -p -C /target`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from dgxie.errors import Invalid, Unavailable

# docs/deploy.md: on the Debian image (950 MB of tar, docs included), -9 --long=27 made 249 MB in
# 15 s on two cores; -15 made 255 MB in 65 s, -19 233 MB in 250 s. A 128 MiB window (27) is what `zstd -d`
# accepts without --long, so the agent needs no option.
ZSTD_OPTIONS = ("-9", "--long=27")


def boot_files(root: Path) -> tuple[Path, Path, str]:
    """(kernel, initrd, kernel version) from the root's /boot; Invalid unless exactly one kernel
    with its initrd is installed."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise Invalid(f"the image must hold exactly one kernel in /boot, found {len(kernels)}")
    version = kernels[0].name.removeprefix("vmlinuz-")
    if not re.fullmatch(r"[A-Za-z0-9._+-]+", version):
        raise Invalid(f"odd kernel version {version!r}")
    initrd = root / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise Invalid(f"kernel {version} has no initrd (/boot/initrd.img-{version}); is initramfs-tools installed?")
    return kernels[0], initrd, version


def pack(root: Path, dest: Path, *, epoch: int) -> None:
    """Write `root` as a zstd-compressed tarball at `dest` (see the module docstring)."""
    tar_cmd = ["tar", "--create", "--file=-", f"--directory={root}", "--sort=name", "--numeric-owner",
               "--format=posix", "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
               "--xattrs", "--xattrs-include=*", "--acls", "--one-file-system", f"--mtime=@{epoch}",
               "--clamp-mtime", "."]
    zstd_cmd = ["zstd", "-q", *ZSTD_OPTIONS, "-T0", "-o", str(dest)]
    with subprocess.Popen(tar_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        z = subprocess.run(zstd_cmd, stdin=tar.stdout, capture_output=True, check=False)
        tar.stdout.close()
        tar_err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
        tar_rc = tar.wait()
    if tar_rc != 0:
        raise Unavailable(f"tar failed (exit {tar_rc}): {tar_err.strip()[:300]}")
    if z.returncode != 0:
        raise Unavailable(f"zstd failed: {z.stderr.decode(errors='replace').strip()[:300]}")
