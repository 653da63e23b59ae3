"""`dgxie image build` and `dgxie agent build`: one sequence, phases reported as they run.

1. resolve: the recipe, the mirror's published snapshot (source.py), the input key
   (recipe.input_key). If image NAME already has that key, nothing is done ("up to date"); if
   another image has it, NAME is registered with that image's files (same blobs, no rebuild).
   Otherwise the snapshot must satisfy the packages (source.check_packages) or nothing happens.
2. bootstrap: mmdebstrap into a scratch directory under `data_dir/tmp` (bootstrap.py).
3. pack: an OS image becomes `rootfs.tar.zst` + kernel + initrd (rootfs.py); the agent becomes
   the Debian kernel + an initramfs assembled by dgxie (initramfs.py).
4. store: the files go into the image blob store by sha256 (`catalog.images.blob_store`, so an
   identical file is stored once), then the Image row is created or replaced in one transaction
   with its event (`catalog.images.put_image`).

A failure at any step raises a DgxieError with one line, leaves the Image row as it was, and the
scratch directory is removed (bootstrap.scratch); blobs stored before a failed commit are
unreferenced content-addressed files, never half-written ones. One build per image name at a
time (a lock file under `data_dir/tmp`).

Image.files of a built image: the served files by name ({sha256, size, role}): `vmlinuz`,
`initrd.img`, for an OS image `rootfs.tar.zst`, for the agent `grubx64.efi` (the UEFI local-boot
loader, localboot.py); plus `rootfs` ({file, sha256, size, format}, OS images) and `build` ({key,
mirror, snapshot, suite, packages, kernel_version, recipe, seconds}).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.catalog.images import blob_store, put_image
from dgxie.catalog.schemas import ImageIn
from dgxie.db import session_scope
from dgxie.errors import Conflict
from dgxie.imaging import bootstrap, initramfs, localboot, rootfs
from dgxie.imaging.bootstrap import Report
from dgxie.imaging.recipe import Recipe, input_key, load
from dgxie.imaging.source import Source, check_packages, open_source, packages_index
from dgxie.models import Image
from dgxie.site import Site
from dgxie.validation import check_name


@dataclass(frozen=True)
class BuildResult:
    name: str
    key: str
    status: str  # "built", "up to date", or "reused" (another image had the same key)
    files: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reused_from: str | None = None


@dataclass(frozen=True)
class Artifacts:
    kernel: Path
    initrd: Path
    version: str
    extra: dict[str, Path] = field(default_factory=dict)  # served name -> file
    meta: dict[str, Any] = field(default_factory=dict)  # added to files["build"]


@dataclass(frozen=True)
class Plan:
    name: str
    recipe: Recipe
    source: Source
    suite: str
    packages: list[str]
    key: str


Make = Callable[[Plan, Path, Report], Artifacts]
ROLES = {"rootfs.tar.zst": "rootfs", localboot.FILE: "localboot"}  # Image.files[name]["role"]


@contextmanager
def _build_lock(data_dir: Path, name: str) -> Iterator[None]:
    d = data_dir / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / f".build-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"image {name} is already being built") from None
        yield
    finally:
        os.close(fd)


def _with_key(s: Session, key: str) -> list[Image]:
    return [i for i in s.scalars(select(Image).order_by(Image.name))
            if isinstance(i.files.get("build"), dict) and i.files["build"].get("key") == key]


def _hook_env(site: Site, plan: Plan, key_copy: Path) -> dict[str, str]:
    return {"DGXIE_MIRROR_URL": f"{site.public_url}/mirror/apt/{plan.source.mirror}",
            "DGXIE_MIRROR_KEY": str(key_copy), "DGXIE_MIRROR_NAME": plan.source.mirror, "DGXIE_SUITE": plan.suite,
            "DGXIE_COMPONENTS": " ".join(plan.source.components)}


def _bootstrap(site: Site, plan: Plan, tmp: Path, report: Report, hooks: bool) -> Path:
    key = tmp / "archive-key.gpg"
    shutil.copyfile(plan.source.keyring, key)
    os.chmod(key, 0o644)
    line = f"deb [signed-by={key}] {plan.source.url()} {plan.suite} {' '.join(plan.source.components)}"
    report("bootstrap", f"mmdebstrap {plan.recipe.variant} {plan.suite}, {len(plan.packages)} packages from "
           f"{plan.source.mirror}@{plan.source.snapshot}")
    target = tmp / "root"
    bootstrap.bootstrap(target=target, suite=plan.suite, source_line=line, keyring=key, variant=plan.recipe.variant,
                        packages=plan.packages, dpkgopt=plan.recipe.dpkgopt, hooks=plan.recipe.hooks if hooks else (),
                        env=_hook_env(site, plan, key), epoch=plan.source.epoch, report=report)
    return target


def make_image(site: Site) -> Make:
    def make(plan: Plan, tmp: Path, report: Report) -> Artifacts:
        root = _bootstrap(site, plan, tmp, report, hooks=True)
        kernel, initrd, version = rootfs.boot_files(root)
        report("pack", f"rootfs.tar.zst (kernel {version})")
        dest = tmp / "rootfs.tar.zst"
        rootfs.pack(root, dest, epoch=plan.source.epoch)
        return Artifacts(kernel, initrd, version, {"rootfs.tar.zst": dest})
    return make


def make_agent(site: Site) -> Make:
    def make(plan: Plan, tmp: Path, report: Report) -> Artifacts:
        root = _bootstrap(site, plan, tmp, report, hooks=False)
        kernel, _, version = rootfs.boot_files(root)
        report("pack", f"initramfs for kernel {version}")
        tree = tmp / "initramfs"
        tree.mkdir()
        initramfs.stage(root, tree, plan.recipe, version)
        dest = tmp / "initrd.img"
        raw = initramfs.pack(tree, dest, mtime=plan.source.epoch)
        report("pack", f"{localboot.FILE}: the UEFI local-boot loader")
        efi = localboot.make(root, plan.recipe.path / "localboot.cfg", tmp / localboot.FILE)
        return Artifacts(kernel, dest, version, extra={localboot.FILE: efi}, meta={"initramfs_bytes": raw})
    return make


def build(sessions: sessionmaker[Session], site: Site, *, name: str, mirror: str, suite: str | None, recipe: str,
          packages: list[str], make: Make, actor: str, report: Report) -> BuildResult:
    """Run the sequence of the module docstring for image `name` and return what happened."""
    check_name(name)
    started = time.monotonic()
    rec = load(recipe)
    suite = suite or rec.suite
    src = open_source(site.data_dir, mirror, site.mirrors)
    wanted = sorted(set(rec.packages) | set(packages))
    key = input_key(rec, mirror=mirror, snapshot=src.snapshot, suite=suite, packages=wanted,
                    public_url=site.public_url)
    plan = Plan(name, rec, src, suite, wanted, key)
    with _build_lock(site.data_dir, name):
        with session_scope(sessions) as s:
            same = _with_key(s, key)
            mine = next((i for i in same if i.name == name), None)
            if mine is not None:
                return BuildResult(name, key, "up to date", dict(mine.files))
            if same:
                other = same[0]
                data = ImageIn(name=name, os=other.os, arch=other.arch, kernel=other.kernel, initrd=other.initrd,
                               cmdline=other.cmdline, files=dict(other.files))
                put_image(s, data, actor=actor, reason=f"image {name}: same build as image {other.name}")
                return BuildResult(name, key, "reused", dict(other.files), reused_from=other.name)
        check_packages(src, packages_index(src, suite), wanted, name)
        report("resolve", f"recipe {rec.name}, mirror {mirror}@{src.snapshot}, suite {suite}, key {key[:12]}: "
               f"all {len(wanted)} packages and their dependencies are there")
        with bootstrap.scratch(site.data_dir, f"build-{name}-") as tmp:
            art = make(plan, tmp, report)
            report("store", "storing files by sha256")
            files = _store(site, plan, art, seconds=time.monotonic() - started)
            data = ImageIn(name=name, os=rec.os, arch="x86_64", kernel="vmlinuz", initrd="initrd.img",
                           cmdline=rec.cmdline, files=files)
            with session_scope(sessions) as s:
                put_image(s, data, actor=actor, reason=f"image {name} built from mirror {mirror}@{src.snapshot}")
    return BuildResult(name, key, "built", files, seconds=time.monotonic() - started)


def _store(site: Site, plan: Plan, art: Artifacts, *, seconds: float) -> dict[str, Any]:
    store = blob_store(site.data_dir)
    files: dict[str, Any] = {}
    for served, path, role in [("vmlinuz", art.kernel, "kernel"), ("initrd.img", art.initrd, "initrd"),
                               *[(n, p, ROLES[n]) for n, p in art.extra.items()]]:
        files[served] = {"sha256": store.put_file(path), "size": path.stat().st_size, "role": role}
    if "rootfs.tar.zst" in files:
        f = files["rootfs.tar.zst"]
        files["rootfs"] = {"file": "rootfs.tar.zst", "sha256": f["sha256"], "size": f["size"], "format": "tar.zst"}
    files["build"] = {"key": plan.key, "recipe": plan.recipe.name, "mirror": plan.source.mirror,
                      "snapshot": plan.source.snapshot, "suite": plan.suite, "packages": plan.packages,
                      "kernel_version": art.version, "seconds": round(seconds, 1), **art.meta}
    return files
