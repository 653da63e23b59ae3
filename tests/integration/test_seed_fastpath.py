"""Install configs on `dgxie serve`'s boot fast path (`dgxie.api.install.fast_seed_answer`) answer
exactly as the FastAPI route does: status, body, Content-Type, Cache-Control (SQLite and PostgreSQL).

The served side is the real uvicorn protocol with the fast path (tests.support.netboot.serve_http);
the route side is an app on the same database and site key through TestClient.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from dgxie import db
from dgxie.app import create_app
from dgxie.context import Context
from dgxie.models import Node
from tests.support.lifecycle import SSH_KEY, enroll
from tests.support.netboot import free_port, serve_http

SETTINGS = {"site": {"name": "lab", "domain": "lab.example", "ssh_authorized_keys": [SSH_KEY]},
            "handoff": {"enabled": False}, "boot": {"trusted_networks": ["127.0.0.0/8", "10.99.0.0/24"]}}


def test_fast_path_answers_as_the_route(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx(**SETTINGS)
    tok = enroll(ctx)
    done = enroll(ctx, "dgx02", "aa:bb:cc:00:00:02", state="installed")
    deb = enroll(ctx, "dgx03", "aa:bb:cc:00:00:03", os="debian")
    cases = [f"/boot/n/{tok}/user-data", f"/boot/n/{tok}/meta-data", f"/boot/n/{tok}/vendor-data",
             f"/boot/n/{deb}/preseed",
             f"/boot/n/{tok}/preseed",  # an artefact its template set lacks: 404
             f"/boot/n/{'x' * 43}/user-data",  # no such token: the same 404
             f"/boot/n/{done}/user-data",  # installed: 409
             f"/boot/n/{tok}/nonsense",  # not an artefact: the route answers
             f"/boot/n/{tok}%2Fx/user-data"]  # something to decode: the route answers
    port = free_port()
    other = make_ctx(**SETTINGS)  # the route's side: the same database and key, its own app
    with serve_http(ctx, port) as url, TestClient(create_app(other), client=("10.99.0.1", 50000)) as route, \
            httpx.Client(base_url=url) as fast:
        fast.get(cases[0])  # both sides now see the node installing, with its live credential
        for n, path in enumerate(cases):
            a, b = fast.get(path), route.get(path)
            # uvicorn's own protocol adds `server: uvicorn`; the fast path does not: who answered
            assert ("server" in a.headers) == (n >= 7), (path, a.headers)
            assert (a.status_code, a.content) == (b.status_code, b.content), path
            for h in ("content-type", "cache-control", "retry-after"):
                assert a.headers.get(h) == b.headers.get(h), (path, h)
        assert fast.get(cases[0]).status_code == 200
        with db.session_scope(ctx.sessions) as s:
            assert s.scalars(select(Node).where(Node.hostname == "dgx01")).one().state == "installing"
