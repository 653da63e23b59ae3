"""`dgxie image build` and `dgxie agent build` for real: mmdebstrap from a filtered dgxie mirror of
the Debian archive this machine uses (tests/support/debian_mirror.py, cached), the CLI run as a
subprocess, the results read back from the image store, the HTTP route and a QEMU boot.

First run: the mirror sync (~210 MB download); then about 90 s per image build and per agent build
(the whole module: about 3.5 min).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.debian_mirror import DebianMirror, sync_debian_mirror
from tests.support.paths import REPO

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mmdebstrap --mode=root)"),
    pytest.mark.skipif(not shutil.which("mmdebstrap") or not shutil.which("zstd"), reason="needs mmdebstrap, zstd"),
    pytest.mark.timeout(1200),
]

PUBLIC = "http://10.9.8.7:8080"


@pytest.fixture(scope="session")
def debian_mirror() -> DebianMirror:
    return sync_debian_mirror()


class Site:
    """A dgxie data dir + SQLite database + config file, with the cached mirror linked in."""

    def __init__(self, base: Path, mirror: DebianMirror) -> None:
        self.data = base / "data"
        self.data.mkdir(mode=0o700)  # as dgxie makes it: a looser one is warned about on every command
        mirror.link_into(self.data)
        self.config = base / "dgxie.yaml"
        self.config.write_text(yaml.safe_dump({"database_url": f"sqlite:///{base / 'dgxie.db'}",
                                               "data_dir": str(self.data), "public_url": PUBLIC,
                                               "mirrors": [mirror.config]}))

    def dgxie(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("DGXIE_CONFIG", None)
        return subprocess.run([sys.executable, "-m", "dgxie", "--config", str(self.config), *args], env=env,
                              capture_output=True, text=True, timeout=1500, cwd=REPO)

    def image(self, name: str) -> dict[str, Any] | None:
        r = self.dgxie("image", "list", "--json")
        assert r.returncode == 0, r.stderr
        return next((i for i in json.loads(r.stdout) if i["name"] == name), None)

    def blobs(self) -> set[str]:
        return {p.name for p in (self.data / "images/blobs/sha256").rglob("*") if p.is_file()}

    def blob(self, digest: str) -> Path:
        return self.data / "images/blobs/sha256" / digest[:2] / digest


@pytest.fixture(scope="module")
def site(debian_mirror: DebianMirror, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield Site(tmp_path_factory.mktemp("imaging"), debian_mirror)


@pytest.fixture(scope="module")
def built(site: Site) -> subprocess.CompletedProcess[str]:
    return site.dgxie("image", "build", "debian-12", "--mirror", "debian")


def test_image_build_stores_rootfs_kernel_initrd(site: Site, built: subprocess.CompletedProcess[str],
                                                 tmp_path: Path) -> None:
    assert built.returncode == 0, built.stderr
    for phase in ("resolve:", "bootstrap: installing remaining packages", "pack:", "store:"):
        assert f"image debian-12: {phase}" in built.stderr
    img = site.image("debian-12")
    assert img is not None and img["os"] == "debian" and (img["kernel"], img["initrd"]) == ("vmlinuz", "initrd.img")
    files = img["files"]
    root = files["rootfs"]
    assert root["file"] == "rootfs.tar.zst" and root["format"] == "tar.zst"
    assert files["rootfs.tar.zst"]["sha256"] == root["sha256"] and files["rootfs.tar.zst"]["role"] == "rootfs"
    build = files["build"]
    assert build["mirror"] == "debian" and build["suite"] == "bookworm" and "cloud-init" in build["packages"]
    assert build["kernel_version"].endswith("-amd64") and len(build["key"]) == 64 and build["snapshot"]
    for name in ("rootfs.tar.zst", "vmlinuz", "initrd.img"):
        blob = site.blob(files[name]["sha256"])
        assert blob.stat().st_size == files[name]["size"]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == files[name]["sha256"]
    assert site.blob(files["vmlinuz"]["sha256"]).read_bytes()[0x202:0x206] == b"HdrS"  # a bzImage

    tarball = site.blob(root["sha256"])
    listing = subprocess.run(f"zstd -dc {tarball} | tar -t", shell=True, capture_output=True, text=True, check=True)
    names = set(listing.stdout.split())
    assert f"./boot/vmlinuz-{build['kernel_version']}" in names and "./usr/bin/cloud-init" in names
    assert not [n for n in names if n.startswith("./etc/ssh/ssh_host_")]
    assert not [n for n in names if n.startswith("./usr/share/man/man")]
    out = tmp_path / "x"
    out.mkdir()
    wanted = ["./etc/apt/sources.list.d/dgxie.sources", "./etc/cloud/cloud.cfg.d/90_dgxie.cfg", "./etc/default/grub",
              "./etc/machine-id", "./etc/apt/keyrings/dgxie-debian.gpg", "./usr/bin/ping"]
    subprocess.run(f"zstd -dc {tarball} | tar -x --xattrs --xattrs-include='*' --numeric-owner -p -C {out} "
                   + " ".join(wanted), shell=True, check=True)
    sources = (out / "etc/apt/sources.list.d/dgxie.sources").read_text()
    assert f"URIs: {PUBLIC}/mirror/apt/debian\n" in sources and "Signed-By: /etc/apt/keyrings/dgxie-debian.gpg" in sources
    key = site.data / "mirrors/apt/debian/current/dgxie-archive-key.gpg"
    assert (out / "etc/apt/keyrings/dgxie-debian.gpg").read_bytes() == key.read_bytes()
    assert "datasource_list: [ NoCloud, None ]" in (out / "etc/cloud/cloud.cfg.d/90_dgxie.cfg").read_text()
    grub = (out / "etc/default/grub").read_text()
    assert 'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"' in grub and "GRUB_TIMEOUT=1\n" in grub
    assert (out / "etc/machine-id").read_bytes() == b""
    assert os.getxattr(out / "usr/bin/ping", "security.capability")  # xattrs travel (cap_net_raw)
    assert not list((site.data / "tmp").glob("build-*")), "the scratch directory was left behind"


def test_the_rootfs_is_served_by_the_image_route(site: Site, built: subprocess.CompletedProcess[str]) -> None:
    from fastapi.testclient import TestClient

    from dgxie.app import create_app
    from dgxie.compose import build_context
    from dgxie.config import load

    img = site.image("debian-12")
    assert img is not None
    ctx = build_context(load(site.config), migrate=False)
    try:
        with TestClient(create_app(ctx)) as c:
            r = c.head("/images/debian-12/rootfs.tar.zst")
            assert r.status_code == 200 and int(r.headers["content-length"]) == img["files"]["rootfs"]["size"]
            head = c.get("/images/debian-12/rootfs.tar.zst", headers={"Range": "bytes=0-3"})
            assert head.status_code == 206 and head.content == b"\x28\xb5\x2f\xfd"  # zstd magic
    finally:
        ctx.engine.dispose()


def test_same_inputs_rebuild_nothing_and_store_no_second_copy(site: Site,
                                                              built: subprocess.CompletedProcess[str]) -> None:
    assert built.returncode == 0
    before, img = site.blobs(), site.image("debian-12")
    again = site.dgxie("image", "build", "debian-12", "--mirror", "debian")
    assert again.returncode == 0, again.stderr
    assert "image debian-12: up to date" in again.stderr and "bootstrap" not in again.stderr
    assert site.image("debian-12") == img and site.blobs() == before
    copy = site.dgxie("image", "build", "debian-12-copy", "--mirror", "debian")
    assert copy.returncode == 0, copy.stderr
    assert "same inputs as image debian-12" in copy.stderr and "bootstrap" not in copy.stderr
    twin = site.image("debian-12-copy")
    assert twin is not None and img is not None and twin["files"] == img["files"] and site.blobs() == before


def test_a_package_the_mirror_lacks_is_one_line_and_stores_nothing(site: Site) -> None:
    before = site.blobs()
    r = site.dgxie("image", "build", "broken", "--mirror", "debian", "--package", "no-such-package")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "dgxie: error: mirror debian lacks package no-such-package (needed by image broken)"]
    assert site.image("broken") is None and site.blobs() == before
    assert not list((site.data / "tmp").glob("build-*"))


@pytest.fixture(scope="module")
def agent(site: Site) -> dict[str, Any]:
    r = site.dgxie("agent", "build", "--mirror", "debian")
    assert r.returncode == 0, r.stderr
    assert "image agent: bootstrap:" in r.stderr and "image agent: pack: initramfs" in r.stderr
    img = site.image("agent")
    assert img is not None
    return img


def test_agent_initramfs_holds_the_tools_libraries_and_modules(site: Site, agent: dict[str, Any]) -> None:
    assert agent["os"] == "dgxie-agent"
    assert agent["cmdline"] == "console=tty0 console=ttyS0,115200 dgxie.url={public_url} dgxie.mac={mac}"
    initrd = site.blob(agent["files"]["initrd.img"]["sha256"])
    assert initrd.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    listing = subprocess.run(f"zstd -dc {initrd} | cpio -t --quiet", shell=True, capture_output=True, text=True,
                             check=True)
    names = set(listing.stdout.split())
    kver = agent["files"]["build"]["kernel_version"]
    mods = f"usr/lib/modules/{kver}"
    for must in ("init", "dev/console", "bin", "usr/bin/busybox", "usr/bin/sh", "usr/sbin/sgdisk", "usr/sbin/sfdisk",
                 "usr/sbin/mdadm", "usr/sbin/mke2fs", "usr/sbin/mkfs.ext4", "usr/bin/curl", "usr/bin/zstd",
                 "usr/bin/tar", "usr/sbin/grub-install", "usr/bin/lspci", "usr/share/misc/pci.ids",
                 "usr/sbin/modprobe", "usr/bin/ipmitool", "usr/sbin/nvme", "usr/sbin/dmidecode",
                 "usr/lib64/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/libc.so.6",
                 "usr/lib/x86_64-linux-gnu/libcurl.so.4", "usr/lib/grub/x86_64-efi/modinfo.sh",
                 "usr/lib/grub/i386-pc/boot.img", f"{mods}/modules.dep", f"{mods}/modules.alias"):
        assert must in names, must
    for module in ("virtio_blk.ko", "virtio_net.ko", "nvme.ko", "ahci.ko", "raid1.ko", "ext4.ko", "vfat.ko",
                   "e1000e.ko", "igb.ko"):
        assert any(n.startswith(f"{mods}/kernel/") and n.endswith("/" + module) for n in names), module
    assert not any(n.endswith("/nouveau.ko") for n in names)  # only what the recipe asks for
    assert agent["files"]["initrd.img"]["size"] < 80 * 1024 * 1024
    # the UEFI local-boot loader (imaging.localboot): a PE32+ GRUB image with the embedded config
    efi = site.blob(agent["files"]["grubx64.efi"]["sha256"]).read_bytes()
    assert agent["files"]["grubx64.efi"]["role"] == "localboot" and efi[:2] == b"MZ"
    assert b"search --no-floppy --set=root --file /EFI/BOOT/BOOTX64.EFI" in efi


def test_agent_boots_in_qemu(site: Site, agent: dict[str, Any], tmp_path: Path) -> None:
    """The kernel unpacks the initramfs and busybox runs: no /init (rdinit=/bin/sh), the modules
    load with modprobe (modules.dep from depmod -b) and find the virtio disk."""
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 missing")
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * (16 << 20))
    script = ("mount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev; echo UNAME=$(uname -r); "
              "modprobe virtio_pci; modprobe virtio_blk; sleep 1; echo BLOCK=$(ls /sys/block); poweroff -f")
    r = subprocess.run(["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-nographic", "-nodefaults", "-no-reboot",
                        "-serial", "stdio", "-kernel", str(site.blob(agent["files"]["vmlinuz"]["sha256"])),
                        "-initrd", str(site.blob(agent["files"]["initrd.img"]["sha256"])),
                        "-drive", f"file={disk},if=virtio,format=raw",
                        "-append", f'console=ttyS0 panic=-1 quiet rdinit=/bin/sh -- -c "{script}"'],
                       capture_output=True, text=True, timeout=240)
    assert f"UNAME={agent['files']['build']['kernel_version']}" in r.stdout, r.stdout[-2000:]
    assert "BLOCK=vda" in r.stdout, r.stdout[-2000:]


def test_agent_rebuild_is_up_to_date(site: Site, agent: dict[str, Any]) -> None:
    before = site.blobs()
    r = site.dgxie("agent", "build", "--mirror", "debian")
    assert r.returncode == 0 and "image agent: up to date" in r.stderr, r.stderr
    assert site.blobs() == before and site.image("agent") == agent
