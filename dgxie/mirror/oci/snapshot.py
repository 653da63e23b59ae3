"""An OCI mirror snapshot: repo -> tag -> digest, the media types and sizes of every manifest,
and the blobs they reference. Manifests and blobs both live in the shared `BlobStore` by digest,
so a snapshot is only this small JSON document.

Layout under `state_dir` (`<data_dir>/mirrors/oci/<name>/`): `current.json` (what is served) and
`snapshots/<id>.json` (history). Both are written to a temp file, fsynced and renamed, so a reader
sees the previous snapshot or the new one, never a mix, and a failed sync changes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dgxie.blobstore import BlobStore
from dgxie.errors import Invalid
from dgxie.mirror.kind import pruned

FORMAT = "dgxie.oci-snapshot/1"


@dataclass
class RepoSnapshot:
    tags: dict[str, str] = field(default_factory=dict)  # tag -> manifest/index digest
    manifests: dict[str, tuple[str, int]] = field(default_factory=dict)  # digest -> (media type, size)
    blobs: dict[str, int] = field(default_factory=dict)  # config and layer digest -> size


@dataclass
class OciSnapshot:
    name: str
    registry: str  # upstream base URL, e.g. https://nvcr.io
    repositories: dict[str, RepoSnapshot] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    @property
    def id(self) -> str:
        return self.created.replace(":", "").replace("-", "").replace(".", "")

    @property
    def upstream_host(self) -> str:
        return self.registry.split("://", 1)[-1]

    def blob_digests(self) -> set[str]:
        """Every digest the snapshot needs from the store (manifests, indexes, configs, layers)."""
        out: set[str] = set()
        for r in self.repositories.values():
            out.update(r.manifests)
            out.update(r.blobs)
        return out

    def sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.repositories.values():
            out.update({d: s for d, (_, s) in r.manifests.items()})
            out.update(r.blobs)
        return out

    def stats(self) -> tuple[int, int]:
        """(files, bytes) held by this snapshot, each digest counted once."""
        sizes = self.sizes()
        return len(sizes), sum(sizes.values())

    def to_manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "kind": "oci", "name": self.name, "registry": self.registry,
            "created": self.created,
            "repositories": {
                repo: {"tags": dict(sorted(r.tags.items())),
                       "manifests": {d: {"mediaType": mt, "size": sz} for d, (mt, sz) in sorted(r.manifests.items())},
                       "blobs": dict(sorted(r.blobs.items()))}
                for repo, r in sorted(self.repositories.items())
            },
        }

    @classmethod
    def from_manifest(cls, doc: Any) -> OciSnapshot:
        """Parse `to_manifest()` output; `Invalid` when it is not one (e.g. a damaged bundle)."""
        try:
            if doc["format"] != FORMAT:
                raise Invalid(f"not an OCI snapshot (format {doc['format']!r})")
            repos = {}
            for repo, r in doc["repositories"].items():
                manifests = {str(d): (str(m["mediaType"]), int(m["size"])) for d, m in r["manifests"].items()}
                tags = {str(t): str(d) for t, d in r["tags"].items()}
                if any(d not in manifests for d in tags.values()):
                    raise Invalid(f"OCI snapshot: a tag of {repo} points at an unlisted manifest")
                repos[str(repo)] = RepoSnapshot(tags=tags, manifests=manifests,
                                                blobs={str(d): int(s) for d, s in r["blobs"].items()})
            return cls(name=str(doc["name"]), registry=str(doc["registry"]), repositories=repos,
                       created=str(doc["created"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Invalid(f"not a valid OCI snapshot ({exc.__class__.__name__}: {exc})") from None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def publish_snapshot(state_dir: Path, snap: OciSnapshot, *, keep: int = 5) -> Path:
    """Write `snap` to the history, then make it current (atomic rename); keep the `keep` newest
    (and the current one, `kind.pruned`)."""
    data = json.dumps(snap.to_manifest(), indent=1).encode()
    _atomic_write(state_dir / "snapshots" / f"{snap.id}.json", data)
    _atomic_write(state_dir / "current.json", data)
    for sid in pruned(list_history(state_dir), snap.id, keep):
        (state_dir / "snapshots" / f"{sid}.json").unlink(missing_ok=True)
    return state_dir / "current.json"


def load_snapshot(path: Path) -> OciSnapshot | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise Invalid(f"{path}: not JSON") from None
    return OciSnapshot.from_manifest(doc)


def current_snapshot(state_dir: Path) -> OciSnapshot | None:
    return load_snapshot(state_dir / "current.json")


def list_history(state_dir: Path) -> list[str]:
    """Snapshot ids, oldest first."""
    return [p.stem for p in sorted((state_dir / "snapshots").glob("*.json"))]


def switch_snapshot(state_dir: Path, snapshot_id: str) -> OciSnapshot:
    """Make an older snapshot current again (its blobs must still be in the store)."""
    snap = load_snapshot(state_dir / "snapshots" / f"{snapshot_id}.json")
    if snap is None:
        raise Invalid(f"no snapshot {snapshot_id!r} (have: {', '.join(list_history(state_dir)) or 'none'})")
    _atomic_write(state_dir / "current.json", json.dumps(snap.to_manifest(), indent=1).encode())
    return snap


def adopt_snapshot(state_dir: Path, doc: Any, store: BlobStore, *, keep: int = 5) -> OciSnapshot:
    """Publish a snapshot document brought in from elsewhere (an air-gap bundle's import): every
    blob it names must already be in `store` (imported and verified), or nothing is published."""
    snap = OciSnapshot.from_manifest(doc)
    missing = sorted(d for d in snap.blob_digests() if not store.has(d))
    if missing:
        raise Invalid(f"OCI snapshot {snap.name}: {len(missing)} blobs are not in the store "
                      f"(first: {missing[0]}); nothing published")
    publish_snapshot(state_dir, snap, keep=keep)
    return snap


def referenced_digests(state_dir: Path) -> set[str]:
    """Every digest the current and the kept snapshots need: what a store garbage collection must
    keep for this mirror (blobs of pruned snapshots are not removed by the OCI code itself)."""
    out: set[str] = set()
    for path in [state_dir / "current.json", *sorted((state_dir / "snapshots").glob("*.json"))]:
        snap = load_snapshot(path)
        if snap is not None:
            out |= snap.blob_digests()
    return out
