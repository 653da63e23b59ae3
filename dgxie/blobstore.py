"""Content-addressed blob store (sha256), shared by the mirrors and the image catalog: a blob held twice is stored once.

Layout under `root`: `blobs/sha256/ab/abcdef...` (complete, verified, read-only) and
`partial/<sha256>` (an interrupted download, resumable). A blob appears under `blobs/` only
after its digest has been verified, by an atomic rename, so readers never see half a blob.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


class DigestMismatch(Exception):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


def _check_hex(digest: str) -> str:
    d = digest.removeprefix("sha256:").lower()
    if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
        raise ValueError(f"{digest!r} is not a sha256 digest")
    return d


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "partial").mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        d = _check_hex(digest)
        return self.root / "blobs" / "sha256" / d[:2] / d

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def partial_path(self, digest: str) -> Path:
        return self.root / "partial" / _check_hex(digest)

    def partial_size(self, digest: str) -> int:
        p = self.partial_path(digest)
        return p.stat().st_size if p.exists() else 0

    def write(self, digest: str, chunks: Iterable[bytes], *, resume: bool = True) -> Path:
        """Append `chunks` to the partial file for `digest` (from its current size when
        `resume`), verify the whole file's sha256, then publish it. On a mismatch the partial
        file is removed and DigestMismatch raised; on any other error it is kept for resuming.
        """
        d = _check_hex(digest)
        final = self.path(d)
        if final.exists():
            for _ in chunks:
                pass
            return final
        part = self.partial_path(d)
        h = hashlib.sha256()
        mode = "ab" if resume and part.exists() else "wb"
        if mode == "ab":
            with part.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        with part.open(mode) as f:
            for chunk in chunks:
                h.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        actual = h.hexdigest()
        if actual != d:
            part.unlink(missing_ok=True)
            raise DigestMismatch(d, actual)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(part, 0o444)
        os.replace(part, final)
        return final

    def put_bytes(self, data: bytes) -> str:
        """Store `data`; return its digest (hex)."""
        d = hashlib.sha256(data).hexdigest()
        self.write(d, [data], resume=False)
        return d

    def put_file(self, src: Path) -> str:
        """Store a local file by its content; return its digest (hex)."""
        h = hashlib.sha256()
        with src.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        d = h.hexdigest()
        if not self.has(d):
            with src.open("rb") as f:
                self.write(d, iter(lambda: f.read(1 << 20), b""), resume=False)
        return d
