"""Helpers for the netboot tests: servers on loopback run in a thread with their own event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from dgxie.app import create_app, http_protocol
from dgxie.context import Context
from tests.support.net import free_port as free_port  # re-exported for the tests that import it from here


@contextmanager
def loop_thread() -> Iterator[Callable[[Coroutine[Any, Any, Any]], Any]]:
    """A running event loop in a thread; yields `run(coro)` that waits for the result."""
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    try:
        yield run
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


@contextmanager
def serve_http(ctx: Context, port: int) -> Iterator[str]:
    """`dgxie serve`'s HTTP listener (fast path + app) on 127.0.0.1:port, in a thread."""
    config = uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning",
                            http=http_protocol(ctx), lifespan="on")
    server = uvicorn.Server(config)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(15)


def write_random(path: Path, size: int) -> Path:
    import os

    path.write_bytes(os.urandom(size))
    return path
