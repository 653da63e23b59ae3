"""Open dashboard pages do not starve the API: their event streams (and static files) are outside
the admission gate (dgxie/api/admission.py), bounded by `dgxie.web.session.StreamSlots` instead.
A real `dgxie serve` with two admission slots and four pages open, each holding its stream."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from dgxie.app import create_app
from dgxie.context import Context
from dgxie.web.session import StreamSlots
from tests.support.serve import served


def test_open_streams_leave_the_api_its_slots(tmp_path: Path, sqlite_url: str) -> None:
    with served(tmp_path, sqlite_url, api={"max_inflight": 2, "queue": 1, "queue_wait": 0.2}) as srv:
        web = httpx.Client(base_url=srv.url, timeout=10)
        assert web.post("/ui/login", data={"token": srv.token}, headers={"Origin": srv.url}).status_code == 303
        opened, stop = threading.Barrier(5), threading.Event()

        def page() -> None:
            with web.stream("GET", "/ui/stream?timeout=30") as r:
                assert r.status_code == 200
                next(r.iter_text())  # the stream is open and held
                opened.wait()
                stop.wait(20)

        threads = [threading.Thread(target=page, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        opened.wait(20)
        try:
            t0 = time.monotonic()
            for _ in range(5):
                assert httpx.get(f"{srv.url}/api/v1/nodes", headers=srv.auth, timeout=5).status_code == 200
            assert httpx.get(f"{srv.url}/ui/static/app.css", timeout=5).status_code == 200
            assert time.monotonic() - t0 < 5
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        web.close()


def test_streams_beyond_the_bound_are_refused(ctx: Context, auth: object) -> None:
    from dgxie import db, tokens

    with db.session_scope(ctx.sessions) as s:
        _, plain = tokens.create_token(s, name="v", role="viewer", actor="test")
    with TestClient(create_app(ctx), follow_redirects=False) as c:
        c.post("/ui/login", data={"token": plain}, headers={"Origin": "http://testserver"})
        c.app.state.web_streams = StreamSlots(limit=0)  # type: ignore[attr-defined]
        r = c.get("/ui/stream?timeout=1")
        assert r.status_code == 503 and r.headers["retry-after"] == "5" and "detail" in r.json()
        slots = StreamSlots(limit=1)
        c.app.state.web_streams = slots  # type: ignore[attr-defined]
        with c.stream("GET", "/ui/stream?timeout=1") as s:
            "".join(s.iter_text())
        assert slots.open == 0  # given back when the stream ended
