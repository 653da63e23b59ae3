"""`OciKind`: kind `oci` behind the `MirrorKind` protocol (dgxie/mirror/kind.py).

A sync (oci/sync.py) stores manifests and blobs by digest and publishes a snapshot document
(`current.json`, `snapshots/<id>.json`; oci/snapshot.py) itself; each sync makes a new snapshot.
A bundle carries the document in the manifest's `meta["oci_snapshot"]` and one `blobs/<digest>`
entry per blob it needs; an import re-publishes the document once every blob is in the store.
The documents are served on `/v2/` (dgxie/api/registry.py, through `store.OciReader`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dgxie.blobstore import BlobStore
from dgxie.errors import Invalid
from dgxie.mirror.kind import Progress, SnapshotInfo, SyncContext
from dgxie.mirror.manifest import FileEntry, Manifest
from dgxie.mirror.oci.snapshot import (
    OciSnapshot,
    adopt_snapshot,
    current_snapshot,
    list_history,
    load_snapshot,
    referenced_digests,
    switch_snapshot,
)
from dgxie.mirror.oci.sync import OciProgress, SyncEvent, sync_oci
from dgxie.sections import OciMirrorConfig


def _reporter(p: Progress, tick: Callable[[], None]) -> OciProgress:
    """Sync events -> the job's progress (phase, totals, counters)."""
    c = p.counters

    def on(ev: SyncEvent) -> None:
        if ev.kind == "repo":
            p.phase = f"repo {ev.repo}"[:32]
        elif ev.kind == "plan":
            p.files_total += ev.count
            p.bytes_total += ev.nbytes
        elif ev.kind == "bytes":
            c.add(bytes_fetched=ev.nbytes, bytes_done=ev.nbytes)
        elif ev.kind == "blob":
            c.add(files_fetched=1, files_done=1)
        elif ev.kind == "skip":
            c.add(files_done=1)
        tick()

    return on


def _load(root: Path, snapshot: str) -> OciSnapshot:
    snap = load_snapshot(root / "snapshots" / f"{snapshot}.json")
    if snap is None:
        snap = current_snapshot(root)
        if snap is None or snap.id != snapshot:
            raise Invalid(f"no OCI snapshot {snapshot!r} in {root}")
    return snap


class OciKind:
    name = "oci"

    def sync(self, cfg: OciMirrorConfig, ctx: SyncContext) -> str:
        snap = sync_oci(cfg, ctx.store, ctx.root, _reporter(ctx.progress, ctx.tick))
        return snap.id

    def current(self, root: Path) -> str | None:
        snap = current_snapshot(root)
        return snap.id if snap is not None else None

    def history(self, root: Path) -> list[str]:
        return list_history(root)

    def info(self, root: Path, snapshot: str) -> SnapshotInfo:
        snap = _load(root, snapshot)
        files, size = snap.stats()
        tags = {repo: sorted(r.tags) for repo, r in sorted(snap.repositories.items())}
        return SnapshotInfo(snap.id, snap.created, files, size, {"upstream": snap.registry, "tags": tags})

    def switch(self, root: Path, snapshot: str) -> None:
        switch_snapshot(root, snapshot)

    def export(self, root: Path, mirror: str, snapshot: str) -> Manifest:
        snap = _load(root, snapshot)
        files = {f"blobs/{d}": FileEntry(d.removeprefix("sha256:"), s) for d, s in snap.sizes().items()}
        return Manifest(mirror=mirror, kind="oci", snapshot=snap.id, created_at=snap.created, files=files,
                        meta={"oci_snapshot": snap.to_manifest()})

    def adopt(self, root: Path, manifest: Manifest, store: BlobStore, keep: int) -> None:
        adopt_snapshot(root, manifest.meta.get("oci_snapshot"), store, keep=keep)

    def referenced(self, root: Path) -> set[str]:
        return {d.removeprefix("sha256:") for d in referenced_digests(root)}

    def url(self, public_url: str, mirror: str) -> str:
        return f"{public_url}/v2/"
