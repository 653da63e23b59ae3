"""A concurrency limit for big downloads (kernels, initrds, root file systems, agent images).

In a boot storm every node fetches its kernel and initrd at once; past what the disk and the link
hold, transfers slow down until firmware and installers time out. `DownloadGate` admits at most
`limit` transfers of files of at least `min_bytes` at a time (smaller files are never counted);
past it the HTTP side answers `503 Service Unavailable` with `Retry-After: N` (`busy_answer`)
instead of starting one more slow transfer, and the TFTP side leaves the read request unanswered
(the client repeats it).

Why 503 + a plain integer Retry-After is a clean retry for iPXE (ipxe/ipxe, src/net/tcp/httpcore.c,
commit 0ab2277c40f1, read for this change): `http_parse_retry_after()` parses the header with
`strtoul()` and sets `HTTP_RESPONSE_RETRY` on any response that carries it; a value that is not a
plain number of seconds (an HTTP date) becomes `HTTP_RETRY_SECONDS` (5). `http_transfer_complete()`
then, for a non-2xx answer with that flag, discards the body (`http_content_deliver()` ignores
content of a failed response), recycles the kept-alive connection, stops the idle watchdog and
starts a timer of `retry_after` seconds whose expiry (`http_retry_expired()` -> `http_reopen()`)
sends the same request again; there is no retry count. A value of 0 retries at once, so N is
always >= 1. So the answer here is: status 503, `Retry-After: <integer seconds>`, a complete body
with its Content-Length (iPXE waits for the end of the body before it retries). curl's `--retry`
also treats 503 as transient and waits `Retry-After` seconds.

N is `retry_after` plus a random 0..`jitter` seconds, so clients held back together do not all
come back in the same second. Thread-safe (the API's routes and the fast path share one gate).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from dgxie.netboot import http


@dataclass
class DownloadGate:
    limit: int = 64  # transfers of big files in flight at once; 0: no limit
    min_bytes: int = 1 << 20  # files smaller than this are never counted nor held back
    retry_after: int = 2  # seconds (>= 1) a client held back is told to wait ...
    jitter: int = 3  # ... plus a random 0..jitter
    on_throttled: Callable[[], None] | None = None
    on_admitted: Callable[[], None] | None = None
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def counts(self, size: int) -> bool:
        """Whether a file of `size` bytes is a big download (counted and limited)."""
        return self.limit > 0 and size >= self.min_bytes

    def admit(self, size: int) -> bool:
        """Take a slot for a download of `size` bytes: True when it may go (call `release()` once
        it has ended, for a file that `counts`), False when it must be answered with a retry."""
        if not self.counts(size):
            return True
        with self._lock:
            if self.in_flight >= self.limit:
                busy = True
            else:
                busy = False
                self.in_flight += 1
        if busy:
            if self.on_throttled:
                self.on_throttled()
            return False
        if self.on_admitted:
            self.on_admitted()
        return True

    def release(self, size: int) -> None:
        if self.counts(size):
            with self._lock:
                self.in_flight = max(0, self.in_flight - 1)

    def wait_seconds(self) -> int:
        """The Retry-After to answer: an integer >= 1 (what iPXE parses)."""
        return max(1, self.retry_after + random.randint(0, max(0, self.jitter)))

    def busy_detail(self) -> str:
        return f"server busy: {self.limit} big downloads in flight; retry later"

    def busy_answer(self, *, keep_alive: bool, head_only: bool = False) -> bytes:
        """The whole 503 answer (head and JSON body) for the fast path."""
        body = json.dumps({"detail": self.busy_detail()}).encode()
        hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                ("Retry-After", str(self.wait_seconds()))]
        head = http.response_head(503, "Service Unavailable", hdrs, keep_alive=keep_alive)
        return head if head_only else head + body
