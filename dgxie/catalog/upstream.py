"""Image files dgxie fetches on first use, then keeps: a pull-through cache into the image store.

An image `files` entry `{"url": U, "role": R}` (a DGXIE import's `--proxy`, or a machines.json
URL on another host) has no sha256 until its first fetch. The first request for it downloads U
(timeouts, at most MAX_BYTES) into the blob store under its sha256 and pins the entry: `sha256`
and `size` are written beside `url` in the caller's transaction, so every later request is served
from the store like any other image file, and a changed upstream is never served silently
(re-import to take it). One download per file at a time: a boot storm waits on the first one. A
failed fetch stores nothing and is a 503 naming the upstream (iPXE retries a failed download).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from dgxie.blobstore import BlobStore
from dgxie.errors import Unavailable
from dgxie.models import Image

log = logging.getLogger("dgxie.images")
MAX_BYTES = 16 << 30  # an installer ISO fits; a runaway upstream does not fill the disk
TIMEOUT = (30.0, 10.0)  # seconds: any read, and connecting

_locks: dict[tuple[str, str], threading.Lock] = {}
_done: dict[tuple[str, str, str], tuple[str, int]] = {}  # (image, file, url) -> (sha256, size) pulled here
_guard = threading.Lock()


def _lock(key: tuple[str, str]) -> threading.Lock:
    with _guard:
        return _locks.setdefault(key, threading.Lock())


def _download(store: BlobStore, url: str) -> tuple[str, int]:
    import httpx  # here: the CLI imports this module on every command, and rarely downloads

    try:
        timeout = httpx.Timeout(TIMEOUT[0], connect=TIMEOUT[1])
        with httpx.Client(timeout=timeout, follow_redirects=True) as client, client.stream("GET", url) as r:
            if r.status_code != 200:
                raise Unavailable(f"upstream {url} answered HTTP {r.status_code}")
            return store.put_stream(r.iter_bytes(1 << 20), max_bytes=MAX_BYTES)
    except httpx.HTTPError as exc:
        raise Unavailable(f"upstream {url}: {exc.__class__.__name__}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise Unavailable(f"upstream {url}: could not store it: {exc}") from None


def pull(store: BlobStore, image: Image, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Fetch `entry["url"]` into `store` (once) and pin it on `image`; returns the pinned entry."""
    url = str(entry["url"])
    with _lock((image.name, name)):
        hit = _done.get((image.name, name, url))
        if hit is None or not store.has(hit[0]):
            log.info("image %s: fetching %s from %s on first use", image.name, name, url)
            hit = _download(store, url)
            _done[(image.name, name, url)] = hit
    pinned = {**entry, "sha256": hit[0], "size": hit[1]}
    image.files = {**image.files, name: pinned}
    return pinned
