"""`AptKind`: kind `apt` behind the `MirrorKind` protocol (dgxie/mirror/kind.py).

A sync (apt/sync.py) returns a manifest, published here as a hardlink tree (apt/tree.py) with
the atomic `current` switch; an unchanged upstream makes no new snapshot. A bundle carries the
tree's own manifest, and an import materializes it the same way. The tree is served as plain
files at `/mirror/apt/NAME/` (dgxie/api/mirror.py, `tree.resolve`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dgxie.blobstore import BlobStore
from dgxie.mirror.apt import sync as apt_sync
from dgxie.mirror.apt import tree
from dgxie.mirror.kind import SnapshotInfo, SyncContext
from dgxie.mirror.manifest import Manifest
from dgxie.sections import AptMirrorConfig


class AptKind:
    name = "apt"

    def sync(self, cfg: AptMirrorConfig, ctx: SyncContext) -> str:
        tree.clean_tmp(ctx.root)
        cur = tree.current(ctx.root)
        previous = tree.load_manifest(ctx.root, cur) if cur else None
        manifest = apt_sync.sync(cfg, ctx, previous)
        if previous is not None and (manifest is previous or manifest.files == previous.files):
            ctx.progress.phase = "up to date"
            return previous.snapshot
        ctx.progress.phase = "publishing"
        manifest.snapshot = tree.new_snapshot_id(ctx.root)
        manifest.created_at = datetime.now(UTC).isoformat()
        self.adopt(ctx.root, manifest, ctx.store, cfg.keep_snapshots)
        return manifest.snapshot

    def current(self, root: Path) -> str | None:
        return tree.current(root)

    def history(self, root: Path) -> list[str]:
        return tree.list_snapshots(root)

    def info(self, root: Path, snapshot: str) -> SnapshotInfo:
        man = tree.load_manifest(root, snapshot)
        return SnapshotInfo(snapshot, man.created_at, len(man.files), man.total_bytes, man.meta)

    def switch(self, root: Path, snapshot: str) -> None:
        tree.publish(root, snapshot)

    def export(self, root: Path, mirror: str, snapshot: str) -> Manifest:
        return tree.load_manifest(root, snapshot)

    def adopt(self, root: Path, manifest: Manifest, store: BlobStore, keep: int) -> None:
        tree.clean_tmp(root)
        tree.materialize(store, root, manifest)
        tree.publish(root, manifest.snapshot)
        tree.prune(root, keep)

    def referenced(self, root: Path) -> set[str]:
        return tree.referenced(root)

    def url(self, public_url: str, mirror: str) -> str:
        return f"{public_url}/mirror/apt/{mirror}"
