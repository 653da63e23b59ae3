"""Snapshots on disk: a tree of hardlinks into the blob store, published by an atomic rename.

Layout of one mirror (`data_dir/mirror/<kind>/<name>/`):
`snapshots/<id>/...` (the tree: dists/, pool/ for APT), `manifests/<id>.json`, and `current`, a
symlink to `snapshots/<id>` replaced with `rename(2)`, so a reader resolves either the old or the
new snapshot, never a mix. A tree is built under `snapshots/.tmp-<id>` and renamed into place
whole; a failure or a kill leaves only a `.tmp-` directory that the next sync removes.
"""

from __future__ import annotations

import errno
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from dgxie.blobstore import BlobStore
from dgxie.mirror.base import Manifest
from dgxie.mirror.oci_snapshot import referenced_digests
from dgxie.mirror.oci_store import store_root


def mirror_dir(data_dir: Path, kind: str, name: str) -> Path:
    """`data_dir/mirrors/<kind>/<name>` (for `oci` the same as `oci_store.oci_state_dir`)."""
    return data_dir / "mirrors" / kind / name


def store_for(data_dir: Path) -> BlobStore:
    """The one blob store every mirror of every kind shares (`oci_store.store_root`)."""
    return BlobStore(store_root(data_dir))


def new_snapshot_id(root: Path) -> str:
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    sid, n = base, 1
    while (root / "snapshots" / sid).exists() or (root / "manifests" / f"{sid}.json").exists():
        n += 1
        sid = f"{base}-{n}"
    return sid


def check_path(rel: str) -> str:
    """A manifest path must stay inside the snapshot: relative, no `..`, no empty parts."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"unsafe path in manifest: {rel!r}")
    return rel


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
    """Keep the `keep` newest snapshots and the current one (after a rollback it may be older);
    remove the rest. Returns what went."""
    snaps = list_snapshots(root)
    cur = current(root)
    gone = []
    for sid in snaps[: max(len(snaps) - keep, 0)]:
        if sid == cur:
            continue
        (root / "manifests" / f"{sid}.json").unlink(missing_ok=True)
        shutil.rmtree(root / "snapshots" / sid, ignore_errors=True)
        gone.append(sid)
    return gone


def referenced(data_dir: Path) -> set[str]:
    """Every digest a kept snapshot of any mirror of any kind needs (manifest-based kinds, and
    the OCI mirrors' own snapshot documents)."""
    out: set[str] = set()
    for mfile in (data_dir / "mirrors").glob("*/*/manifests/*.json"):
        out |= Manifest.load(mfile).digests()
    for state_dir in (data_dir / "mirrors" / "oci").glob("*"):
        out |= {d.removeprefix("sha256:") for d in referenced_digests(state_dir)}
    return out


def gc(data_dir: Path, *, dry_run: bool = False) -> tuple[int, int]:
    """Remove store blobs that no kept snapshot references; returns (blobs, bytes) removed.
    Run it with no sync in progress (a running sync's new blobs are not referenced yet)."""
    store = store_for(data_dir)
    keep = referenced(data_dir)
    n = size = 0
    for p in (store.root / "blobs" / "sha256").glob("*/*"):
        if p.name not in keep and p.is_file():
            n += 1
            size += p.stat().st_size
            if not dry_run:
                p.unlink()
    return n, size
