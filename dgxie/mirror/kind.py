"""What a mirror kind is: the `MirrorKind` protocol the generic mirror service drives.

The generic service (`service`, `records`, `queries`, `bundle`, `gc`, `schedule`) owns sync jobs
and their progress, one sync per mirror at a time, the database rows (state, snapshots, events),
rollback, air-gap bundles and garbage collection. It never branches on the kind: it looks the
kind up by the config's `kind` (`kinds.KINDS`) and calls the methods below. A kind owns its
upstream protocol, its sync, and its snapshots on disk under `mirror_dir(data_dir, kind, name)`;
every blob goes to the one shared `BlobStore` (`store_for`). Kinds never touch the database, the
configuration loader or HTTP serving frameworks (an import-linter contract).

Why two snapshot formats (both behind this protocol, not one system):
- `apt` publishes a file tree: `snapshots/<id>/...` (hardlinks into the store), `manifests/<id>.json`
  and a `current` symlink switched with rename(2), so APT clients (or an nginx in front of
  `data_dir/mirrors/apt/`) read plain files, with no lookup per request.
- `oci` publishes a document: `snapshots/<id>.json` and `current.json` (repository -> tag ->
  digest, media types, sizes). The `/v2/` API answers by digest straight from the store and needs
  the media types a file tree cannot carry.
Merging them would change the on-disk layout operators rely on. What they share lives here: the
listing shape (`SnapshotInfo`), the pruning rule (`pruned`), the paths, and the kind-agnostic
`Manifest` (manifest.py) every bundle carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dgxie.blobstore import BlobStore
from dgxie.crypto import SecretBox
from dgxie.mirror.fetch import Counters, Fetcher
from dgxie.mirror.manifest import Manifest
from dgxie.sections import MirrorConfig

__all__ = ["MirrorKind", "Progress", "SnapshotInfo", "SyncContext", "mirror_dir", "mirrors_dir", "pruned",
           "store_for"]


def mirrors_dir(data_dir: Path, kind: str) -> Path:
    """`data_dir/mirrors/<kind>`: one directory per mirror of that kind."""
    return data_dir / "mirrors" / kind


def mirror_dir(data_dir: Path, kind: str, name: str) -> Path:
    """`data_dir/mirrors/<kind>/<name>`: a mirror's snapshots, keys, scratch and lock."""
    return mirrors_dir(data_dir, kind) / name


def store_for(data_dir: Path) -> BlobStore:
    """The one blob store (`data_dir/store`) every mirror of every kind shares."""
    return BlobStore(data_dir / "store")


def pruned(history: list[str], current: str | None, keep: int) -> list[str]:
    """Of `history` (snapshot ids, oldest first), those to remove: all but the `keep` newest,
    and never the current one (after a rollback it may be older)."""
    return [sid for sid in history[: max(len(history) - keep, 0)] if sid != current]


@dataclass(frozen=True)
class SnapshotInfo:
    """One kept snapshot, as listed (`dgxie mirror snapshots`) and recorded in the database."""

    snapshot: str
    created_at: str  # ISO 8601
    files: int
    bytes: int
    meta: dict[str, Any] = field(default_factory=dict)  # the kind's own summary (upstream, ...)


@dataclass
class Progress:
    """Live progress of one sync, read by the job runner (CLI bar, API job row)."""

    phase: str = "starting"
    files_total: int = 0
    bytes_total: int = 0
    counters: Counters = field(default_factory=Counters)


@dataclass
class SyncContext:
    """What the service hands a kind's `sync`, besides the mirror's config."""

    root: Path  # the mirror's directory (`mirror_dir`); the service holds its lock meanwhile
    store: BlobStore
    fetcher: Fetcher  # HTTP downloads into the store; its counters are `progress.counters`
    progress: Progress
    tick: Callable[[], None] = lambda: None  # call often; reports progress, may raise to cancel
    box: SecretBox | None = None  # the site's secret box, to keep secrets (signing keys) sealed at rest


C = TypeVar("C", bound=MirrorConfig, contravariant=True)


class MirrorKind(Protocol[C]):
    """One kind of mirror (`apt`, `oci`). `root` is always `mirror_dir(data_dir, kind, mirror)`."""

    name: str  # the config's `kind`

    def sync(self, cfg: C, ctx: SyncContext) -> str:
        """Fetch and verify everything from upstream, publish it atomically as a new snapshot
        (pruned to `cfg.keep_snapshots`), and return the id now current: the previous one when
        upstream has not changed. On any failure raise with a clear one-line message; the
        published snapshot stays as it was."""
        ...

    def current(self, root: Path) -> str | None:
        """The id of the snapshot being served, if any."""
        ...

    def history(self, root: Path) -> list[str]:
        """Ids of the kept snapshots, oldest first (the current one among them)."""
        ...

    def info(self, root: Path, snapshot: str) -> SnapshotInfo:
        """Size and summary of a kept snapshot."""
        ...

    def switch(self, root: Path, snapshot: str) -> None:
        """Serve a kept snapshot (rollback), with one atomic switch."""
        ...

    def export(self, root: Path, mirror: str, snapshot: str) -> Manifest:
        """A kept snapshot as a bundle manifest: every blob it needs (by sha256), plus whatever
        `adopt` needs in `meta`."""
        ...

    def adopt(self, root: Path, manifest: Manifest, store: BlobStore, keep: int) -> None:
        """Publish a snapshot brought by a bundle (its blobs are already verified into `store`),
        keeping its id; prune to `keep`."""
        ...

    def referenced(self, root: Path) -> set[str]:
        """Hex sha256 of every blob the kept snapshots need (garbage collection keeps them)."""
        ...

    def url(self, public_url: str, mirror: str) -> str:
        """Where clients reach the mirror (the kind's read API is served by `dgxie.api`)."""
        ...
