"""The UEFI local-boot loader built with the agent: a GRUB EFI image whose embedded config
(`images/agent/localboot.cfg`) finds the installed system's `/EFI/BOOT/BOOTX64.EFI` on any disk
and chainloads it.

Why: an installed node still network-boots first (so dgxie can reinstall it without a BMC), and
dgxie answers "boot from the local disk". On BIOS iPXE does that itself (`sanboot --drive 0x80`);
on UEFI iPXE can only leave, and what the firmware does next depends on its boot order and
menu (OVMF tries every network option again, then the disk; some firmware stops at a menu).
MAAS solves it the same way: the network-loaded GRUB chainloads the ESP's loader.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dgxie.errors import Unavailable

FILE = "grubx64.efi"
MODULES = ("part_gpt", "part_msdos", "fat", "ext2", "search", "search_fs_file", "chain", "boot", "echo", "sleep",
           "minicmd")


def embedded(text: str) -> str:
    """The config as GRUB's rescue parser takes it: no comments, no blank lines (it has no `#`
    comments, and a quote in one would swallow the lines after it)."""
    lines = (line.strip() for line in text.splitlines())
    return "".join(f"{line}\n" for line in lines if line and not line.startswith("#"))


def make(chroot: Path, config: Path, dest: Path) -> Path:
    """Write the loader to `dest` with the chroot's grub-mkimage (the agent's GRUB packages)."""
    work = chroot / "tmp" / "dgxie-localboot"
    work.mkdir(parents=True, exist_ok=True)
    (work / "localboot.cfg").write_text(embedded(config.read_text()))
    res = subprocess.run(["chroot", str(chroot), "grub-mkimage", "-O", "x86_64-efi", "-o", f"/tmp/{work.name}/{FILE}",
                          "-p", "/EFI/BOOT", "-c", f"/tmp/{work.name}/localboot.cfg", *MODULES],
                         capture_output=True, text=True, timeout=300, check=False)
    if res.returncode != 0:
        raise Unavailable(f"grub-mkimage for the UEFI local-boot loader failed: {res.stderr.strip()[:300]}")
    shutil.move(work / FILE, dest)
    return dest
