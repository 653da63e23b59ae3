"""`api.hotpath`: the node reads and single enrolments answered ahead of the router give what the
routes give (status, body, Content-Type, ETag, metrics label), on both databases, and anything it
cannot check as the route would is handed to the route unchanged (its refusal, in its words).

Two apps on one database: one as served (`hot`), one with the hot path taken out (`routed`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dgxie.api.hotpath import HotPath
from dgxie.app import create_app
from dgxie.context import Context
from dgxie.validation import MAX_JSON_DEPTH

Auth = Callable[[str], dict[str, str]]


def _hot(app: Any) -> HotPath:
    layer = app.middleware_stack
    for _ in range(30):
        if isinstance(layer, HotPath):
            return layer
        layer = layer.app
    raise AssertionError("no HotPath in the app's middleware stack")


class Pair:
    def __init__(self, hot: TestClient, routed: TestClient, headers: dict[str, str]) -> None:
        self.hot, self.routed, self.headers = hot, routed, headers

    def answered(self) -> int:
        return _hot(self.hot.app).answered

    def both(self, method: str, url: str, **kw: Any) -> tuple[Any, Any]:
        kw["headers"] = self.headers | kw.get("headers", {})
        kw.setdefault("follow_redirects", False)
        return self.hot.request(method, url, **kw), self.routed.request(method, url, **kw)


@pytest.fixture
def pair(make_ctx: Callable[..., Context], auth: Auth) -> Iterator[Pair]:
    hot_app, routed_app = create_app(make_ctx()), create_app(make_ctx())
    routed_app.user_middleware = [m for m in routed_app.user_middleware if m.cls is not HotPath]
    with TestClient(hot_app) as hot, TestClient(routed_app) as routed:
        p = Pair(hot, routed, auth("operator"))
        for i in range(6):
            body = {"hostname": f"gpu{i:02d}", "mac": f"02:00:00:00:{i:02x}:01", "role": "slurmd" if i % 2 else "k8s-worker",
                    "tags": [f"rack{i % 3}"], "interfaces": [{"mac": f"02:00:00:00:{i:02x}:02", "name": "eno2"}]}
            assert routed.post("/api/v1/nodes", json=body, headers=p.headers).status_code == 201
        for c in (hot, routed):  # each app's token cache learns the token (a miss is the route's)
            assert c.get("/api/v1/tokens/self", headers=p.headers).status_code == 200
        yield p


def _same(a: Any, b: Any) -> None:
    assert (a.status_code, a.content) == (b.status_code, b.content)
    for h in ("content-type", "etag", "retry-after"):
        assert a.headers.get(h) == b.headers.get(h), h


@pytest.mark.parametrize("url", [
    "/api/v1/nodes/gpu01", "/api/v1/nodes/GPU03", "/api/v1/nodes/02-00-00-00-04-02", "/api/v1/nodes/gpu99",
    "/api/v1/nodes", "/api/v1/nodes?limit=2&offset=1&tag=rack1", "/api/v1/nodes?state=enrolled&role=slurmd",
    "/api/v1/nodes?profile=nope", "/api/v1/nodes?offset=0&limit=1000", "/api/v1/nodes?role=",
])
def test_reads_answered_here_are_the_routes_answers(pair: Pair, url: str) -> None:
    before = pair.answered()
    hot, routed = pair.both("GET", url)
    _same(hot, routed)
    assert pair.answered() == before + 1
    if hot.status_code == 200 and "etag" in hot.headers:  # the ETag is the route's: 304 on both
        again = pair.both("GET", url, headers={"If-None-Match": hot.headers["etag"]})
        assert [r.status_code for r in again] == [304, 304]


@pytest.mark.parametrize("url", [
    "/api/v1/nodes?limit=0", "/api/v1/nodes?limit=1001", "/api/v1/nodes?limit=010", "/api/v1/nodes?limit=abc",
    "/api/v1/nodes?offset=-1", "/api/v1/nodes?offset=2147483648", "/api/v1/nodes?state=bogus",
    "/api/v1/nodes?limit=1&limit=2", "/api/v1/nodes?foo=1", "/api/v1/nodes/gpu01/events", "/api/v1/nodes/",
    "/api/v1/nodesx",
])
def test_what_it_cannot_check_goes_to_the_route(pair: Pair, url: str) -> None:
    before = pair.answered()
    _same(*pair.both("GET", url))
    assert pair.answered() == before


@pytest.mark.parametrize("headers", [{"Authorization": ""}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic abc"}])
def test_a_token_it_does_not_know_goes_to_the_route(pair: Pair, headers: dict[str, str]) -> None:
    before = pair.answered()
    for url in ("/api/v1/nodes/gpu01", "/api/v1/nodes"):
        hot, routed = pair.both("GET", url, headers=headers)
        _same(hot, routed)
        assert hot.status_code == 401
    assert pair.answered() == before


def _node(i: int, **kw: Any) -> dict[str, Any]:
    return {"hostname": f"new{i:02d}", "mac": f"02:00:00:01:{i:02x}:01", "tags": ["a"], **kw}


def test_an_enrolment_answered_here_is_the_routes(pair: Pair) -> None:
    before = pair.answered()
    hot = pair.hot.post("/api/v1/nodes", json=_node(1), headers=pair.headers)
    routed = pair.routed.post("/api/v1/nodes", json=_node(2), headers=pair.headers)
    assert (hot.status_code, routed.status_code) == (201, 201)
    assert pair.answered() == before + 1
    strip = re.compile(rb'"(id|hostname|mac|[a-z_]+_at)":("[^"]*"|\d+)')
    assert strip.sub(b"", hot.content) == strip.sub(b"", routed.content)
    assert hot.headers["content-type"] == routed.headers["content-type"]
    _same(*pair.both("GET", "/api/v1/nodes/new01"))
    _same(*pair.both("POST", "/api/v1/nodes", json=_node(1)))  # 409, answered here and by the route
    assert pair.answered() == before + 3


@pytest.mark.parametrize("kw", [
    {"json": {"hostname": "x1"}}, {"json": _node(3, tags="a")}, {"json": [1]}, {"content": b""},
    {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
    {"content": b'{"hostname": "x\\u0000", "mac": "02:00:00:00:aa:01"}', "headers": {"Content-Type": "application/json"}},
    {"content": b'{"hostname": "x4", "mac": "02:00:00:00:dd:01", "facts": ' + b'{"a": ' * (MAX_JSON_DEPTH + 1)
     + b"1" + b"}" * (MAX_JSON_DEPTH + 2), "headers": {"Content-Type": "application/json"}},
    {"data": {"hostname": "x2", "mac": "02:00:00:00:bb:01"}},
    {"content": b'{"hostname": "x3", "mac": "02:00:00:00:cc:01"}', "headers": {"Content-Type": "text/plain"}},
])
def test_a_body_it_cannot_check_goes_to_the_route(pair: Pair, kw: dict[str, Any]) -> None:
    before = pair.answered()
    headers = pair.headers | kw.pop("headers", {})
    hot = pair.hot.post("/api/v1/nodes", **kw, headers=headers)
    routed = pair.routed.post("/api/v1/nodes", **kw, headers=headers)
    if hot.status_code == 201:  # the route takes a form body or text/plain as JSON: the node is made once
        assert routed.status_code == 409
    else:
        _same(hot, routed)
    assert pair.answered() == before


def test_a_viewer_may_read_here_but_not_enrol(pair: Pair, auth: Auth) -> None:
    viewer = auth("viewer")
    assert pair.hot.get("/api/v1/tokens/self", headers=viewer).status_code == 200
    before = pair.answered()
    assert pair.hot.get("/api/v1/nodes/gpu00", headers=viewer).status_code == 200
    assert pair.answered() == before + 1
    hot = pair.hot.post("/api/v1/nodes", json=_node(5), headers=viewer)
    routed = pair.routed.post("/api/v1/nodes", json=_node(5), headers=viewer)
    _same(hot, routed)
    assert hot.status_code == 403 and pair.answered() == before + 1


def test_metrics_name_the_route_template(pair: Pair) -> None:
    pair.hot.get("/api/v1/nodes/gpu02", headers=pair.headers)
    pair.hot.get("/api/v1/nodes?tag=rack2", headers=pair.headers)
    pair.hot.post("/api/v1/nodes", json=_node(6), headers=pair.headers)
    text = pair.hot.get("/metrics").text
    for line in ('dgxie_http_requests_total{method="GET",route="/api/v1/nodes/{ref}",status="200"}',
                 'dgxie_http_requests_total{method="GET",route="/api/v1/nodes",status="200"}',
                 'dgxie_http_requests_total{method="POST",route="/api/v1/nodes",status="201"}'):
        assert line in text
    assert "gpu02" not in text
