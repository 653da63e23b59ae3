"""What every mirror kind shares: the snapshot manifest and the `Syncer` extension point.

A snapshot is kind-agnostic: a manifest of `path -> sha256 (+ size)` whose blobs live in the
shared `BlobStore`, plus kind-specific metadata (`meta`). Publishing, serving as a file tree,
keeping/rolling back, export and import all work on manifests only, so a new kind (OCI) plugs in
by registering one sync function: `register_syncer("oci", fn)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dgxie.blobstore import BlobStore
from dgxie.crypto import SecretBox
from dgxie.mirror.fetch import Counters, Fetcher
from dgxie.sections import MirrorConfig as MirrorSource

__all__ = ["FileEntry", "Manifest", "MirrorSource", "Progress", "SelfPublished", "SyncContext", "Syncer",
           "register_syncer"]


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass
class Manifest:
    mirror: str
    kind: str
    snapshot: str = ""
    created_at: str = ""
    files: dict[str, FileEntry] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    def digests(self) -> set[str]:
        return {f.sha256 for f in self.files.values()}

    def to_json(self) -> dict[str, Any]:
        return {"mirror": self.mirror, "kind": self.kind, "snapshot": self.snapshot, "created_at": self.created_at,
                "meta": self.meta, "files": {p: [f.sha256, f.size] for p, f in sorted(self.files.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        files = {str(p): FileEntry(str(v[0]), int(v[1])) for p, v in data["files"].items()}
        return cls(mirror=str(data["mirror"]), kind=str(data["kind"]), snapshot=str(data.get("snapshot", "")),
                   created_at=str(data.get("created_at", "")), files=files, meta=dict(data.get("meta", {})))

    def dump(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls.from_json(json.loads(path.read_text()))


@dataclass
class Progress:
    """Live progress of one sync, read by the job runner (CLI bar, API job row)."""

    phase: str = "starting"
    files_total: int = 0
    bytes_total: int = 0
    counters: Counters = field(default_factory=Counters)


@dataclass
class SyncContext:
    source: MirrorSource
    store: BlobStore
    fetcher: Fetcher
    work_dir: Path  # per-mirror directory under the data dir (keys, scratch)
    previous: Manifest | None
    progress: Progress
    tick: Callable[[], None] = lambda: None  # call often; reports progress, may raise to cancel
    box: SecretBox | None = None  # the site's secret box, to keep secrets (signing keys) sealed at rest


@dataclass(frozen=True)
class SelfPublished:
    """What a kind that publishes its own snapshots (OCI: `oci_snapshot.publish_snapshot`)
    returns instead of a Manifest: the snapshot it made current, and its size."""

    snapshot: str
    files: int
    bytes: int


class Syncer(Protocol):
    def __call__(self, ctx: SyncContext) -> Manifest | SelfPublished:
        """Fetch and verify everything; return the new snapshot's manifest (blobs stored), which
        the service then publishes, or `SelfPublished` when the kind published it itself.

        Raise an exception with a clear message on any failure: nothing is published then.
        Return `ctx.previous` unchanged when upstream has not changed.
        """
        ...


class KindUnavailable(Exception):
    pass


SYNCERS: dict[str, Syncer] = {}


def register_syncer(kind: str, fn: Syncer) -> None:
    SYNCERS[kind] = fn


def syncer_for(kind: str) -> Syncer:
    if kind not in SYNCERS:
        raise KindUnavailable(f"mirror kind {kind!r} is not available in this build")
    return SYNCERS[kind]
