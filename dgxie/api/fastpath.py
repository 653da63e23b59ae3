"""The boot fast path: image files by `loop.sendfile`, cached iPXE scripts, before the ASGI stack.

Measured (issue 3): Starlette's FileResponse (64 KiB reads through a thread pool) serves 0.3x of
nginx; `loop.sendfile` on the stock asyncio loop 0.85x; a trivial FastAPI route ~7,500 req/s.
So `dgxie serve` gives uvicorn a protocol class (`fast_protocol`) that looks at each request head
on a connection first: `GET|HEAD /images/IMAGE/FILE`, `GET /boot/ipxe?mac=` and `GET /healthz`
(from the background database probe, `db.Probe`) are answered here (zero-copy, or from the script
cache, with no ASGI scope, middleware or thread hop per hit), and `GET /boot/n/TOKEN/ARTIFACT`
(install configs, in a worker thread: `dgxie.api.install.fast_seed_answer`);
anything else, and every later byte of that connection, goes to uvicorn's own protocol unchanged.
Big image files go through the context's `DownloadGate` (`dgxie.netboot.downloads`): past
`boot.max_downloads` in flight the answer is 503 + `Retry-After`, which iPXE and curl retry.
Same port, same URLs (`boot.urls`), same answers as `dgxie.api.boot`'s routes. See docs/netboot.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from dgxie.api import install
from dgxie.api.boot import IPXE_MEDIA
from dgxie.api.ops import health_answer
from dgxie.catalog import images
from dgxie.context import Context
from dgxie.db import PROBE_FRESH, session_scope
from dgxie.errors import DgxieError
from dgxie.netboot import http

log = logging.getLogger("dgxie.fastpath")
T = TypeVar("T")

FILE_TTL = 2.0
IDLE_TIMEOUT = 30.0  # seconds a fast-path keep-alive connection may sit idle between requests


def _error(status: int, detail: str, *, keep_alive: bool, head_only: bool) -> bytes:
    reasons = {404: "Not Found", 416: "Range Not Satisfiable", 422: "Unprocessable Entity", 503: "Service Unavailable"}
    body = json.dumps({"detail": detail}).encode()
    return http.simple_response(status, reasons.get(status, "Error"), body, "application/json",
                                keep_alive=keep_alive, head_only=head_only)


class BootFastPath:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.scripts = ctx.scripts
        # database work off the event loop, on few threads of its own: the loop's default pool
        # (6 threads on 2 cores) spent its time handing the GIL around (user-data 1.2-1.6x with 2)
        self._db = ThreadPoolExecutor(ctx.settings.boot.db_threads, thread_name_prefix="dgxie-boot-db")
        self._files: dict[tuple[str, str], tuple[float, Path, int, str]] = {}

    @staticmethod
    def wants(head: http.Head) -> bool:
        if head.method not in ("GET", "HEAD") or head.has_body:
            return False
        if head.path in ("/boot/ipxe", "/healthz"):
            return head.method == "GET"
        if head.path.startswith("/boot/n/"):  # install configs (dgxie.api.install.fast_seed_path)
            return head.method == "GET" and install.fast_seed_path(head.path) is not None
        return head.path.startswith("/images/") and head.path.count("/") == 3

    def health(self, error: str | None, keep_alive: bool) -> bytes:
        """/healthz's answer, byte for byte the route's (dgxie.api.ops.health_answer)."""
        status, payload = health_answer(error)
        body = json.dumps(payload, separators=(",", ":")).encode()
        hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if status != 200:
            hdrs.append(("Retry-After", str(self.ctx.settings.api.retry_after)))
        return http.response_head(status, "OK" if status == 200 else "Service Unavailable", hdrs,
                                  keep_alive=keep_alive) + body

    def quick(self, head: http.Head) -> bytes | None:
        """A cached iPXE script, or /healthz from a fresh background probe, answered inline (no
        task, no thread: it answers while the API is saturated), else None."""
        if head.path == "/healthz":  # "ok" may be PROBE_FRESH s old; "unhealthy" is always checked live
            fresh, error = self.ctx.db_probe.last(PROBE_FRESH)
            return self.health(None, head.keep_alive) if fresh and error is None else None
        if head.path != "/boot/ipxe":
            return None
        script = self.scripts.cached(head.query.get("mac", [""])[0])
        if script is None:
            return None
        return http.simple_response(200, "OK", script.text.encode(), IPXE_MEDIA, keep_alive=head.keep_alive)

    async def serve(self, head: http.Head, transport: asyncio.Transport) -> None:
        head_only = head.method == "HEAD"
        try:
            if head.path == "/healthz":
                error = await asyncio.to_thread(self.ctx.db_probe.check)
                transport.write(self.health(error, head.keep_alive))
            elif head.path == "/boot/ipxe":
                script = await self._in_db_thread(self.scripts.get, head.query.get("mac", [""])[0])
                transport.write(http.simple_response(200, "OK", script.text.encode(), IPXE_MEDIA,
                                                     keep_alive=head.keep_alive))
            elif head.path.startswith("/boot/n/"):
                token, artifact = install.fast_seed_path(head.path) or ("", "")
                peer = (transport.get_extra_info("peername") or ("",))[0]
                transport.write(await self._in_db_thread(install.fast_seed_answer, self.ctx, token, artifact,
                                                         str(peer), head.keep_alive))
            else:
                await self._image(head, transport, head_only)
        except DgxieError as exc:
            transport.write(_error(exc.status, exc.detail, keep_alive=head.keep_alive, head_only=head_only))
        if not head.keep_alive:
            transport.close()

    async def _in_db_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    def _lookup(self, image: str, file: str) -> tuple[Path, int, str]:
        hit = self._files.get((image, file))
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2], hit[3]
        with session_scope(self.ctx.sessions) as s:
            path, size, digest = images.image_file(s, self.ctx.settings.data_dir, image, file)
        if len(self._files) > 10_000:
            self._files.clear()
        self._files[(image, file)] = (time.monotonic() + FILE_TTL, path, size, digest)
        return path, size, digest

    async def _image(self, head: http.Head, transport: asyncio.Transport, head_only: bool) -> None:
        _, _, image, file = head.path.split("/")
        hit = self._files.get((image, file))
        if hit is not None and hit[0] > time.monotonic():
            path, size, digest = hit[1], hit[2], hit[3]
        else:
            path, size, digest = await self._in_db_thread(self._lookup, image, file)
        etag = f'"{digest}"'
        rng_header = head.headers.get("range")
        if_range = head.headers.get("if-range")
        if if_range is not None and if_range != etag:
            rng_header = None  # the client's copy changed: send it all (RFC 9110 section 13.1.5)
        try:
            rng = http.parse_range(rng_header, size)
        except http.Unsatisfiable:
            transport.write(http.response_head(416, "Range Not Satisfiable",
                                               [("Content-Range", f"bytes */{size}"), ("Content-Length", "0")],
                                               keep_alive=head.keep_alive))
            return
        hdrs = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes"), ("ETag", etag)]
        if rng is None:
            first, count, status, reason = 0, size, 200, "OK"
        else:
            first, count, status, reason = rng[0], rng[1] - rng[0] + 1, 206, "Partial Content"
            hdrs.append(("Content-Range", f"bytes {rng[0]}-{rng[1]}/{size}"))
        hdrs.append(("Content-Length", str(count)))
        if head_only or count == 0:
            transport.write(http.response_head(status, reason, hdrs, keep_alive=head.keep_alive))
            return
        gate = self.ctx.downloads
        if not gate.admit(size):  # too many big downloads in flight: 503 + Retry-After (iPXE retries)
            transport.write(gate.busy_answer(keep_alive=head.keep_alive))
            return
        try:
            transport.write(http.response_head(status, reason, hdrs, keep_alive=head.keep_alive))
            with path.open("rb") as f:
                try:
                    await asyncio.get_running_loop().sendfile(transport, f, first, count)
                except NotImplementedError:  # uvloop has no loop.sendfile: plain reads, with flow control
                    await _copy(transport, f, first, count)
        finally:
            gate.release(size)


async def _copy(transport: asyncio.Transport, f: Any, offset: int, count: int, chunk: int = 1 << 20) -> None:
    """Send `count` bytes of `f` from `offset`, waiting while the transport's buffer is full."""
    f.seek(offset)
    while count > 0 and not transport.is_closing():
        data = f.read(min(chunk, count))
        if not data:
            break
        transport.write(data)
        count -= len(data)
        while transport.get_write_buffer_size() > 4 * chunk and not transport.is_closing():
            await asyncio.sleep(0.001)


def fast_protocol(base: type[Any], fast: BootFastPath) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol class `base` that answers the boot paths itself."""

    class FastBootProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._fp_transport = cast(asyncio.Transport, transport)
            self._fp_buf = b""
            self._fp_delegated = False
            self._fp_busy = False
            self._fp_task: asyncio.Task[None] | None = None
            self._fp_idle: asyncio.TimerHandle | None = None
            self._fp_last = time.monotonic()

        def _fp_arm_idle(self) -> None:
            """Close a kept-alive connection idle for IDLE_TIMEOUT; one timer per period, not
            one per request (the script path answers tens of thousands a second)."""
            if self._fp_idle is None:
                self._fp_idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._fp_check_idle)

        def _fp_check_idle(self) -> None:
            self._fp_idle = None
            if self._fp_delegated or self._fp_transport.is_closing():
                return  # uvicorn's own keep-alive timeout takes over a delegated connection
            left = self._fp_last + IDLE_TIMEOUT - time.monotonic()
            if left > 0 or self._fp_busy or self._fp_buf:
                self._fp_idle = asyncio.get_running_loop().call_later(max(left, 1.0), self._fp_check_idle)
            else:
                self._fp_transport.close()

        def shutdown(self) -> None:
            """Server shutdown (SIGTERM): a connection uvicorn does not own is ended here. One with
            an answer in flight (a download in `loop.sendfile`) has its task cancelled, which then
            aborts the connection: closing the transport under a running sendfile makes asyncio
            log InvalidStateError (3.11), and a stalled client would hold the shutdown."""
            if self._fp_delegated:
                super().shutdown()
            elif self._fp_busy and self._fp_task is not None:
                self._fp_task.cancel()
            else:
                self._fp_transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._fp_idle is not None:
                self._fp_idle.cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._fp_last = time.monotonic()
            if self._fp_delegated:
                super().data_received(data)
                return
            self._fp_buf += data
            if not self._fp_busy:
                self._fp_pump()

        def _fp_delegate(self) -> None:
            self._fp_delegated = True
            buf, self._fp_buf = self._fp_buf, b""
            if buf:
                super().data_received(buf)

        def _fp_pump(self) -> None:
            while True:
                end = self._fp_buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._fp_buf) > http.MAX_HEAD:
                        self._fp_delegate()
                    elif not self._fp_buf and not self._fp_transport.is_closing():
                        self._fp_arm_idle()  # between requests on a kept-alive connection
                    return
                head = http.parse_head(self._fp_buf[:end])
                if head is None or not fast.wants(head):
                    self._fp_delegate()
                    return
                self._fp_buf = self._fp_buf[end + 4:]
                quick = fast.quick(head)
                if quick is not None:
                    self._fp_transport.write(quick)
                    if not head.keep_alive:
                        self._fp_transport.close()
                        return
                    continue
                self._fp_busy = True
                self._fp_task = asyncio.get_running_loop().create_task(self._fp_serve(head))
                return

        async def _fp_serve(self, head: http.Head) -> None:
            try:
                await fast.serve(head, self._fp_transport)
            except asyncio.CancelledError:  # shutdown(): the answer is cut short
                self._fp_transport.abort()
                raise
            except (ConnectionError, OSError, RuntimeError) as exc:
                log.debug("fast path: connection dropped: %s", exc)
                self._fp_transport.abort()
                return
            except Exception:
                log.exception("fast path: unhandled error")
                self._fp_transport.abort()
                return
            self._fp_busy, self._fp_task = False, None
            if not self._fp_transport.is_closing():
                self._fp_pump()

    return FastBootProtocol
