"""A failed blob write leaves no partial file unless it can be resumed, and `sweep_partials`
removes abandoned ones by age only (issue 12, item 9). The full-disk case, on a real full
filesystem, is in tests/integration/test_image_disk_full.py."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dgxie.blobstore import STALE_PARTIAL_SECONDS, BlobStore, DigestMismatch

DATA = os.urandom(3 << 20)
DIGEST = hashlib.sha256(DATA).hexdigest()


def _chunks(fail: BaseException | None = None) -> Iterator[bytes]:
    yield DATA[: 1 << 20]
    if fail is not None:
        raise fail
    yield DATA[1 << 20:]


def _partials(store: BlobStore) -> list[str]:
    return sorted(p.name for p in (store.root / "partial").iterdir())


def test_a_failed_local_copy_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "s")
    for fail in (KeyboardInterrupt(), OSError(5, "Input/output error")):  # an interrupt, a read error
        with pytest.raises(type(fail)):
            store.write(DIGEST, _chunks(fail), resume=False, keep_partial=False)
        assert _partials(store) == [] and not store.has(DIGEST)
    with pytest.raises(DigestMismatch):
        store.write("0" * 64, _chunks(), resume=False)
    assert _partials(store) == []
    src = tmp_path / "f"
    src.write_bytes(DATA)
    assert store.store_file(src) == (DIGEST, True) and store.store_file(src) == (DIGEST, False)


def test_an_interrupted_download_is_kept_for_resuming_unless_the_disk_is_full(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "s")
    with pytest.raises(ConnectionError):
        store.write(DIGEST, _chunks(ConnectionError("reset")), resume=False)  # a first try
    assert _partials(store) == [DIGEST] and store.partial_size(DIGEST) == 1 << 20
    with pytest.raises(OSError):
        store.write(DIGEST, _chunks(OSError(28, "No space left on device")), resume=True)  # its resume
    assert _partials(store) == []


def test_sweep_removes_only_partials_untouched_for_the_bound(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "s")
    old, fresh = store.partial_path("a" * 64), store.partial_path("b" * 64)
    old.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y" * 10)
    then = time.time() - STALE_PARTIAL_SECONDS - 60
    os.utime(old, (then, then))
    assert store.sweep_partials(dry_run=True) == (1, 100) and old.exists()
    assert store.sweep_partials() == (1, 100)
    assert _partials(store) == ["b" * 64]  # a write in progress elsewhere (touched just now) stays
    assert store.sweep_partials(older_than=0) == (1, 10)
