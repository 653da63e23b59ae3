"""Read side of the OCI mirrors: where they live under the data dir, and a reader that answers
the distribution API's questions (tags, manifests, blobs) from the published snapshots.

Paths: blobs in the shared store at `<data_dir>/store` (`kind.store_for`), each mirror's snapshots
in `<data_dir>/mirrors/oci/<name>/` (`kind.mirror_dir`). Which mirror serves a repository: with containerd's `?ns=HOST`
the mirror whose upstream is HOST; otherwise the first mirror (by name) that holds the repository.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from dgxie.errors import NotFound
from dgxie.mirror.kind import mirrors_dir, store_for
from dgxie.mirror.oci.snapshot import OciSnapshot, RepoSnapshot, load_snapshot


def _canon(host: str) -> str:
    """containerd sends `ns=docker.io` for Docker Hub, whose API host is registry-1.docker.io."""
    host = host.lower()
    return "docker.io" if host in ("registry-1.docker.io", "index.docker.io") else host


class UnknownName(NotFound):
    """No mirror holds this repository (distribution error NAME_UNKNOWN)."""


class UnknownManifest(NotFound):
    """MANIFEST_UNKNOWN."""


class UnknownBlob(NotFound):
    """BLOB_UNKNOWN."""


@dataclass(frozen=True)
class ManifestHit:
    digest: str
    media_type: str
    size: int
    path: Path


class OciReader:
    """Answers from `current.json` of every OCI mirror; re-reads a snapshot when its file changes."""

    def __init__(self, data_dir: Path) -> None:
        self.root = mirrors_dir(data_dir, "oci")
        self.store = store_for(data_dir)
        self._cache: dict[Path, tuple[int, int, OciSnapshot]] = {}
        self._lock = threading.Lock()

    def snapshots(self) -> list[OciSnapshot]:
        out = []
        for path in sorted(self.root.glob("*/current.json")):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            with self._lock:
                hit = self._cache.get(path)
                if hit is None or hit[:2] != (st.st_mtime_ns, st.st_ino):
                    snap = load_snapshot(path)
                    if snap is None:
                        continue
                    hit = (st.st_mtime_ns, st.st_ino, snap)
                    self._cache[path] = hit
            out.append(hit[2])
        return out

    def repo(self, name: str, ns: str | None = None) -> RepoSnapshot:
        snaps = self.snapshots()
        if ns:
            snaps = [s for s in snaps if _canon(s.upstream_host) == _canon(ns)] or snaps
        for s in snaps:
            if name in s.repositories:
                return s.repositories[name]
        raise UnknownName(f"repository {name} is not mirrored here")

    def tags(self, name: str, ns: str | None = None) -> list[str]:
        return sorted(self.repo(name, ns).tags)

    def manifest(self, name: str, reference: str, ns: str | None = None) -> ManifestHit:
        repo = self.repo(name, ns)
        digest = reference if reference.startswith("sha256:") else repo.tags.get(reference)
        if digest is None or digest not in repo.manifests:
            raise UnknownManifest(f"manifest {name}:{reference} is not mirrored here")
        media_type, size = repo.manifests[digest]
        return ManifestHit(digest, media_type, size, self.store.path(digest))

    def blob(self, name: str, digest: str, ns: str | None = None) -> Path:
        repo = self.repo(name, ns)
        if digest in repo.blobs or digest in repo.manifests:  # manifests are blobs too (spec)
            path = self.store.path(digest)
        else:
            raise UnknownBlob(f"blob {digest} is not in repository {name}")
        if not path.is_file():
            raise UnknownBlob(f"blob {digest} of {name} is missing from the store")
        return path
