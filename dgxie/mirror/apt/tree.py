"""APT snapshots on disk: a tree of hardlinks into the blob store, published by an atomic rename.

Layout of one mirror (`data_dir/mirrors/apt/<name>/`):
`snapshots/<id>/...` (the tree: dists/, pool/), `manifests/<id>.json`, and `current`, a
symlink to `snapshots/<id>` replaced with `rename(2)`, so a reader resolves either the old or the
new snapshot, never a mix. A tree is built under `snapshots/.tmp-<id>` and renamed into place
whole; a failure or a kill leaves only a `.tmp-` directory that the next sync removes. The trees
are plain files and symlinks, so they can be served as they are (`resolve`, or nginx).
"""

from __future__ import annotations

import errno
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from dgxie.blobstore import BlobStore
from dgxie.errors import NotFound
from dgxie.mirror.kind import pruned
from dgxie.mirror.manifest import Manifest, check_path


def new_snapshot_id(root: Path) -> str:
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    sid, n = base, 1
    while (root / "snapshots" / sid).exists() or (root / "manifests" / f"{sid}.json").exists():
        n += 1
        sid = f"{base}-{n}"
    return sid


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        os.symlink(src, dst)


def clean_tmp(root: Path) -> None:
    snaps = root / "snapshots"
    if snaps.is_dir():
        for p in snaps.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
    for p in (root / "manifests").glob("*.tmp") if (root / "manifests").is_dir() else ():
        p.unlink(missing_ok=True)


def materialize(store: BlobStore, root: Path, manifest: Manifest) -> Path:
    """Build `snapshots/<manifest.snapshot>` from the store; all or nothing."""
    final = root / "snapshots" / manifest.snapshot
    if final.is_dir():
        return final
    tmp = root / "snapshots" / f".tmp-{manifest.snapshot}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        made: set[Path] = set()
        for rel, entry in sorted(manifest.files.items()):
            dst = tmp / check_path(rel)
            if dst.parent not in made:
                dst.parent.mkdir(parents=True, exist_ok=True)
                made.add(dst.parent)
            _link(store.path(entry.sha256), dst)
        tmp.mkdir(parents=True, exist_ok=True)
        (root / "manifests").mkdir(parents=True, exist_ok=True)
        manifest.dump(root / "manifests" / f"{manifest.snapshot}.json")
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def current(root: Path) -> str | None:
    link = root / "current"
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def publish(root: Path, snapshot: str) -> None:
    """Point `current` at `snapshot` with one atomic rename."""
    if not (root / "snapshots" / snapshot).is_dir():
        raise FileNotFoundError(snapshot)
    tmp = root / ".current.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(Path("snapshots") / snapshot, tmp)
    os.replace(tmp, root / "current")


def list_snapshots(root: Path) -> list[str]:
    mdir = root / "manifests"
    if not mdir.is_dir():
        return []
    return sorted(p.stem for p in mdir.glob("*.json") if (root / "snapshots" / p.stem).is_dir())


def load_manifest(root: Path, snapshot: str) -> Manifest:
    return Manifest.load(root / "manifests" / f"{snapshot}.json")


def prune(root: Path, keep: int) -> list[str]:
    """Keep the `keep` newest snapshots and the current one; remove the rest. Returns what went."""
    gone = pruned(list_snapshots(root), current(root), keep)
    for sid in gone:
        (root / "manifests" / f"{sid}.json").unlink(missing_ok=True)
        shutil.rmtree(root / "snapshots" / sid, ignore_errors=True)
    return gone


def referenced(root: Path) -> set[str]:
    """Every digest the kept snapshots' manifests name."""
    out: set[str] = set()
    for mfile in (root / "manifests").glob("*.json"):
        out |= Manifest.load(mfile).digests()
    return out


def resolve(root: Path, path: str) -> str:
    """The file at `path` (already checked relative, no `..`) in the published snapshot; NotFound
    if there is none. `current` is resolved once, so a reader sees one whole snapshot even while
    the next one is published."""
    snap = os.path.realpath(root / "current")
    if not os.path.isdir(snap):
        raise NotFound(f"mirror {root.name} has no published snapshot")
    full = os.path.join(snap, path)
    if not os.path.isfile(full):
        raise NotFound("no such file")
    return full
