"""Garbage collection of the shared blob store: remove every blob that no kept snapshot of any
mirror, of any kind, references (each kind says what its snapshots need: `MirrorKind.referenced`).

Mirrors are found on disk (`data_dir/mirrors/<kind>/<name>`), not in the configuration, so an
imported mirror, or one dropped from the configuration, keeps its blobs. Run it with no sync in
progress (a running sync's new blobs are not referenced yet): `service.collect_garbage` makes sure.

It also removes the store's stale partial files (untouched for `blobstore.STALE_PARTIAL_SECONDS`):
what an interrupted download left behind. One still being written (a sync in another process) is
younger than that and stays. `service.collect_garbage` does the same for the image store.
"""

from __future__ import annotations

from pathlib import Path

from dgxie.mirror.kind import mirrors_dir, store_for
from dgxie.mirror.kinds import KINDS


def referenced(data_dir: Path) -> set[str]:
    """Hex sha256 of every blob a kept snapshot of any mirror needs."""
    out: set[str] = set()
    for name, kind in KINDS.items():
        for root in mirrors_dir(data_dir, name).glob("*"):
            if root.is_dir():
                out |= kind.referenced(root)
    return out


def sweep(data_dir: Path, *, dry_run: bool = False) -> tuple[int, int]:
    """Remove store blobs that no kept snapshot references, and the store's stale partial files;
    returns (files, bytes) removed."""
    store = store_for(data_dir)
    keep = referenced(data_dir)
    n = size = 0
    n, size = store.sweep_partials(dry_run=dry_run)
    for p in (store.root / "blobs" / "sha256").glob("*/*"):
        if p.name not in keep and p.is_file():
            n += 1
            size += p.stat().st_size
            if not dry_run:
                p.unlink()
    return n, size
