"""Kind `oci` in the generic mirror service: jobs, progress, locking, metrics, list, rollback and
air-gap bundles for the OCI mirrors, whose sync and snapshots live in `oci_sync`/`oci_snapshot`.

The OCI code publishes its own snapshot documents (`current.json`, `snapshots/<id>.json` in
`data_dir/mirrors/oci/NAME`), so its syncer returns `SelfPublished`; a bundle carries the snapshot
document in the manifest's `meta` and one `blobs/<digest>` entry per blob it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dgxie.blobstore import BlobStore
from dgxie.mirror.base import FileEntry, Manifest, SelfPublished, SyncContext
from dgxie.mirror.oci_snapshot import OciSnapshot, adopt_snapshot, current_snapshot, list_history, switch_snapshot
from dgxie.mirror.oci_spec import OciMirrorSpec
from dgxie.mirror.oci_sync import SyncEvent, sync_oci


def spec_of(name: str, options: dict[str, Any]) -> OciMirrorSpec:
    return OciMirrorSpec.from_entry({"name": name, "kind": "oci", **options})


def sync(ctx: SyncContext) -> SelfPublished:
    spec = spec_of(ctx.source.name, ctx.source.options)
    p, c = ctx.progress, ctx.progress.counters

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
        ctx.tick()

    snap = sync_oci(spec, ctx.store, ctx.work_dir, on, keep_snapshots=ctx.source.keep_snapshots)
    return published(snap)


def published(snap: OciSnapshot) -> SelfPublished:
    sizes = snap.sizes()
    return SelfPublished(snap.id, len(sizes), sum(sizes.values()))


def current(state_dir: Path) -> SelfPublished | None:
    snap = current_snapshot(state_dir)
    return published(snap) if snap is not None else None


def history(state_dir: Path) -> list[str]:
    return list_history(state_dir)


def rollback(state_dir: Path, snapshot: str) -> SelfPublished:
    return published(switch_snapshot(state_dir, snapshot))


def to_manifest(name: str, state_dir: Path) -> Manifest | None:
    """The current OCI snapshot as a kind-agnostic manifest (for export)."""
    snap = current_snapshot(state_dir)
    if snap is None:
        return None
    files = {f"blobs/{d}": FileEntry(d.removeprefix("sha256:"), s) for d, s in snap.sizes().items()}
    return Manifest(mirror=name, kind="oci", snapshot=snap.id, created_at=snap.created, files=files,
                    meta={"oci_snapshot": snap.to_manifest()})


def adopt(state_dir: Path, manifest: Manifest, store: BlobStore, keep: int) -> None:
    """Publish an imported OCI snapshot (all its blobs already verified into the store)."""
    adopt_snapshot(state_dir, manifest.meta["oci_snapshot"], store, keep=keep)
