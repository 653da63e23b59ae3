"""Content-addressed blob store (sha256), shared by the mirrors and the image catalog: a blob held twice is stored once.

Layout under `root`: `blobs/sha256/ab/abcdef...` (complete, verified, read-only) and
`partial/<sha256>` (a write in progress, or an interrupted download kept for resuming). A blob
appears under `blobs/` only after its digest has been verified, by an atomic rename, so readers
never see half a blob.

A failed write leaves no partial file behind unless it can be resumed: a digest mismatch, a full
disk (ENOSPC, EDQUOT, EFBIG) or any failure of a write that is not a download (a local copy:
`put_file`, `store_file`, `put_bytes`, `write(keep_partial=False)`; an interrupt included)
removes it. What is left (a resumable download that was never
resumed, a process killed mid-write) is removed by `sweep_partials` once untouched for
`STALE_PARTIAL_SECONDS` (`dgxie mirror gc`), so a write still in progress elsewhere is never cut.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

STALE_PARTIAL_SECONDS = 3600.0  # a partial file untouched this long is abandoned (a live write touches it)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


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

    def write(self, digest: str, chunks: Iterable[bytes], *, resume: bool = True, keep_partial: bool = True) -> Path:
        """Append `chunks` to the partial file for `digest` (from its current size when
        `resume`), verify the whole file's sha256, then publish it. On a mismatch the partial
        file is removed and DigestMismatch raised. On any other error it is removed too, unless
        `keep_partial` (a download another try resumes) and the disk is not full.
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
        try:
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
        except BaseException as exc:
            if not keep_partial or (isinstance(exc, OSError) and exc.errno in DISK_FULL):
                part.unlink(missing_ok=True)
            raise
        actual = h.hexdigest()
        if actual != d:
            part.unlink(missing_ok=True)
            raise DigestMismatch(d, actual)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(part, 0o444)
        os.replace(part, final)
        return final

    def sweep_partials(self, *, older_than: float = STALE_PARTIAL_SECONDS, dry_run: bool = False) -> tuple[int, int]:
        """Remove partial files untouched for `older_than` seconds; returns (files, bytes)."""
        n = size = 0
        cutoff = time.time() - older_than
        for p in (self.root / "partial").iterdir():
            try:
                st = p.stat()
            except FileNotFoundError:  # published or removed meanwhile
                continue
            if p.is_file() and st.st_mtime < cutoff:
                n += 1
                size += st.st_size
                if not dry_run:
                    p.unlink(missing_ok=True)
        return n, size

    def put_stream(self, chunks: Iterable[bytes], *, max_bytes: int) -> tuple[str, int]:
        """Store a stream whose digest is not known beforehand: (digest, size). More than
        `max_bytes`, or any failure, leaves nothing behind (ValueError for the size)."""
        part = self.root / "partial" / f"stream-{os.getpid()}-{time.monotonic_ns()}"
        h = hashlib.sha256()
        size = 0
        try:
            with part.open("wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise ValueError(f"larger than {max_bytes} bytes")
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            d = h.hexdigest()
            final = self.path(d)
            if not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(part, 0o444)
                os.replace(part, final)
            return d, size
        finally:
            part.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        """Store `data`; return its digest (hex)."""
        d = hashlib.sha256(data).hexdigest()
        self.write(d, [data], resume=False, keep_partial=False)
        return d

    def put_file(self, src: Path) -> str:
        """Store a local file by its content; return its digest (hex)."""
        return self.store_file(src)[0]

    @staticmethod
    def digest_file(src: Path) -> str:
        """The sha256 of a local file, read in 1 MiB blocks (what `store_file` would store it as)."""
        h = hashlib.sha256()
        with src.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def store_file(self, src: Path) -> tuple[str, bool]:
        """Store a local file by its content: (digest, whether this call added the blob). A failed
        copy (disk full, interrupt) leaves nothing behind."""
        d = self.digest_file(src)
        if self.has(d):
            return d, False
        with src.open("rb") as f:
            self.write(d, iter(lambda: f.read(1 << 20), b""), resume=False, keep_partial=False)
        return d, True

    def remove(self, digest: str) -> None:
        """Remove a published blob (a caller undoing what it added; gc decides by reference)."""
        self.path(digest).unlink(missing_ok=True)
