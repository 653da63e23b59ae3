"""HTTP downloads into the blob store: verify while writing, resume with Range (RFC 9110 §14).

Protocol code: no database, no configuration. Thread-safe: one `httpx.Client` (a connection pool)
is shared by the worker threads of `Fetcher.fetch_many`.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

import httpx

from dgxie.blobstore import BlobStore, DigestMismatch


class FetchError(Exception):
    """A download failed: network error, HTTP status, size or digest mismatch, disk full."""


@dataclass(frozen=True)
class Wanted:
    url: str
    sha256: str
    size: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # e.g. (("Authorization", "Bearer ..."),) for a registry


@dataclass
class Counters:
    """What a sync fetched (only bytes really transferred count as fetched)."""

    files_fetched: int = 0
    bytes_fetched: int = 0
    files_done: int = 0
    bytes_done: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def add(self, *, files_fetched: int = 0, bytes_fetched: int = 0, files_done: int = 0,
            bytes_done: int = 0) -> None:
        with self.lock:
            self.files_fetched += files_fetched
            self.bytes_fetched += bytes_fetched
            self.files_done += files_done
            self.bytes_done += bytes_done


class Fetcher:
    def __init__(self, store: BlobStore, *, timeout: float = 60.0, workers: int = 8,
                 client: httpx.Client | None = None) -> None:
        self.store = store
        self.workers = workers
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=True,
                                             limits=httpx.Limits(max_connections=workers * 2),
                                             headers={"User-Agent": "dgxie-mirror", "Accept-Encoding": "identity"})
        self.counters = Counters()
        self.cancel = threading.Event()

    def close(self) -> None:
        self.client.close()

    def get_bytes(self, url: str, *, missing_ok: bool = False) -> bytes | None:
        """A small file (Release, InRelease) into memory; None for a 404 when `missing_ok`."""
        try:
            r = self.client.get(url)
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
        if r.status_code in (404, 410) and missing_ok:
            return None
        if r.status_code != 200:
            raise FetchError(f"{url}: HTTP {r.status_code}")
        self.counters.add(bytes_fetched=len(r.content))
        return r.content

    def fetch(self, w: Wanted) -> None:
        """Make `w.sha256` present in the store, resuming a partial file; retry once from zero
        when a resumed file turns out corrupt."""
        if self.store.has(w.sha256):
            self.counters.add(files_done=1, bytes_done=w.size or 0)
            return
        for attempt in (0, 1):
            try:
                self._fetch_once(w, resume=attempt == 0)
                break
            except DigestMismatch as exc:
                if attempt == 1:
                    raise FetchError(f"{w.url}: {exc}") from None
        self.counters.add(files_fetched=1, files_done=1)

    def _fetch_once(self, w: Wanted, *, resume: bool) -> None:
        have = self.store.partial_size(w.sha256) if resume else 0
        if w.size is not None and have >= w.size:
            have = 0
        headers = dict(w.headers) | ({"Range": f"bytes={have}-"} if have else {})
        try:
            with self.client.stream("GET", w.url, headers=headers) as r:
                if r.status_code == 206 and have:
                    start = _content_range_start(r.headers.get("content-range", ""))
                    if start != have:
                        raise FetchError(f"{w.url}: server resumed at {start}, not {have}")
                    append = True
                elif r.status_code == 200:
                    append = False
                else:
                    raise FetchError(f"{w.url}: HTTP {r.status_code}")
                self.store.write(w.sha256, self._chunks(r.iter_raw(), w.size, have if append else 0),
                                 resume=append)
        except httpx.HTTPError as exc:
            raise FetchError(f"{w.url}: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise FetchError(f"disk full while storing {w.url}") from None
            raise FetchError(f"{w.url}: {exc.strerror or exc}") from None

    def _chunks(self, it: Iterable[bytes], size: int | None, start: int) -> Iterator[bytes]:
        total = start
        for chunk in it:
            if self.cancel.is_set():
                raise FetchError("sync cancelled")
            total += len(chunk)
            if size is not None and total > size:
                raise DigestMismatch("(size)", f"more than {size} bytes")
            self.counters.add(bytes_fetched=len(chunk), bytes_done=len(chunk))
            yield chunk

    def fetch_many(self, wanted: list[Wanted], on_tick: Callable[[], None] | None = None) -> None:
        """Fetch all of `wanted` with `workers` threads. The first failure cancels what has not
        started; downloads in flight are let finish (stored, or kept partial), then it is raised."""
        if not wanted:
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="dgxie-fetch") as pool:
            futures = [pool.submit(self.fetch, w) for w in wanted]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                if on_tick:
                    on_tick()
                for f in done:
                    if f.exception() is not None:
                        for p in pending:
                            p.cancel()
                        wait(pending)
                        raise f.exception()  # type: ignore[misc]


def _content_range_start(value: str) -> int:
    # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def rate(bytes_: int, started: float) -> float:
    return bytes_ / max(time.monotonic() - started, 1e-6)
