"""/healthz in the boot fast path (dgxie.api.fastpath): answered on the event loop from the
background probe's last `SELECT 1` (no ASGI stack, no worker thread, so it answers while the API
is saturated), byte for byte what the route says, and only an "ok" is taken from the cache."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dgxie.api.fastpath import BootFastPath
from dgxie.context import Context
from dgxie.netboot import http

HEAD = http.parse_head(b"GET /healthz HTTP/1.1\r\nHost: x")


def test_healthz_from_a_fresh_probe_is_the_routes_answer(ctx: Context, client: TestClient) -> None:
    assert HEAD is not None and BootFastPath.wants(HEAD)
    fast = BootFastPath(ctx)
    assert ctx.db_probe.check() is None
    raw = fast.quick(HEAD)
    assert raw is not None
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    route = client.get("/healthz")
    assert route.status_code == 200 and body == route.content


def test_no_cached_answer_without_a_fresh_good_probe(ctx: Context) -> None:
    fast = BootFastPath(ctx)
    assert HEAD is not None and fast.quick(HEAD) is None  # never probed: checked live (serve())
    ctx.db_probe._last = (0.0, "OperationalError")  # an old failure
    assert fast.quick(HEAD) is None
    unhealthy = fast.health("OperationalError", keep_alive=True)
    assert unhealthy.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 2" in unhealthy
    assert unhealthy.endswith(b'{"status":"unhealthy","database":"OperationalError"}')
