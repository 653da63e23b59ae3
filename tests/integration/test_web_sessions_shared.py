"""Dashboard sessions shared by several API instances on one database (two Contexts on the same
PostgreSQL database, two apps on one SQLite file): a cookie from one works on the other, sign out
and revocation on one end it on both (within the store's cache), a restart signs nobody out, each
token keeps a bounded number of sessions, expired rows are purged, and neither the cookie value
nor the API token (nor the CSRF token) is in the database in clear."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dgxie.app import create_app
from dgxie.context import Context
from dgxie.crypto import hash_token
from dgxie.db import session_scope
from dgxie.models import WebSessionRow
from dgxie.web.store import CACHE_SECONDS, SessionStore
from tests.integration.test_web import ORIGIN, sign_in, token

Apps = Callable[[], TestClient]


@pytest.fixture
def apps(make_ctx: Callable[..., Context]) -> Iterator[Apps]:
    """`apps()` -> a new instance (its own Context, engine and app) on the test's database."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(TestClient(create_app(make_ctx()), follow_redirects=False))


def cookie(c: TestClient) -> str:
    value = c.cookies.get("dgxie_session")
    assert value
    return value


def on(c: TestClient, sid: str) -> TestClient:
    c.cookies.set("dgxie_session", sid)
    return c


def until_signed_out(c: TestClient) -> float:
    """Seconds until `c` is sent to the sign-in page (bounded: fails after CACHE_SECONDS + 3)."""
    start = time.monotonic()
    while (r := c.get("/ui/")).status_code == 200:
        assert time.monotonic() - start < CACHE_SECONDS + 3, "still signed in"
        time.sleep(0.1)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    return time.monotonic() - start


def test_a_cookie_from_one_instance_works_on_another(apps: Apps, auth: Callable[[str], dict[str, str]]) -> None:
    a, b = apps(), apps()
    csrf = sign_in(a, token(a, "operator", auth("admin")))
    sid = cookie(a)
    page = on(b, sid).get("/ui/")
    assert page.status_code == 200 and f'name="csrf" value="{csrf}"' in page.text  # same CSRF token on b
    r = b.post("/api/v1/nodes", headers=auth("admin"), json={"hostname": "n1", "mac": "02:00:00:00:00:01"})
    assert r.status_code == 201, r.text
    act = b.post("/ui/nodes/n1/action", data={"csrf": csrf, "action": "drain"}, headers=ORIGIN)
    assert act.status_code == 303 and act.headers["location"] == "/ui/nodes/n1"
    assert b.post("/ui/nodes/n1/action", data={"csrf": "x", "action": "drain"}, headers=ORIGIN).status_code == 403
    a.close()  # a restart of a (or of every instance) signs nobody out
    assert on(apps(), sid).get("/ui/").status_code == 200


def test_sign_out_on_one_instance_ends_the_session_on_all(apps: Apps, auth: Callable[[str], dict[str, str]]) -> None:
    a, b = apps(), apps()
    csrf = sign_in(a, token(a, "viewer", auth("admin")))
    sid = cookie(a)
    assert on(b, sid).get("/ui/").status_code == 200  # b has it cached now
    out = a.post("/ui/logout", data={"csrf": csrf}, headers=ORIGIN)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert on(a, sid).get("/ui/").status_code == 303  # at once on the instance that signed out
    assert until_signed_out(b) <= CACHE_SECONDS + 1  # within the cache's seconds on the other
    assert on(apps(), sid).get("/ui/").status_code == 303  # and on a fresh instance at once


def test_revoking_the_token_ends_its_sessions_on_every_instance(apps: Apps,
                                                               auth: Callable[[str], dict[str, str]]) -> None:
    a, b = apps(), apps()
    admin = auth("admin")
    sign_in(a, token(a, "operator", admin))
    sid = cookie(a)
    assert on(b, sid).get("/ui/").status_code == 200
    assert on(a, sid).get("/ui/").status_code == 200  # cached on a too, just now
    assert a.delete("/api/v1/tokens/web-operator", headers=admin).status_code in (200, 204)
    assert on(a, sid).get("/ui/").status_code == 303  # at once where it was revoked
    assert until_signed_out(b) <= CACHE_SECONDS + 1
    assert b.post("/ui/login", data={"token": "dgxie_x"}, headers=ORIGIN).status_code == 401


def test_sessions_per_token_are_bounded_and_expired_rows_purged(ctx: Context,
                                                                auth: Callable[[str], dict[str, str]]) -> None:
    tok = auth("viewer")["Authorization"].removeprefix("Bearer ")
    store = SessionStore(per_token=2, cache_seconds=0)
    sids = [store.create(ctx.sessions, ctx.site.box, ctx.tokens, tok)[0] for _ in range(3)]
    assert store.load(ctx.sessions, ctx.site.box, ctx.tokens, sids[0]) is None  # the oldest dropped
    assert all(store.load(ctx.sessions, ctx.site.box, ctx.tokens, s) for s in sids[1:])
    short = SessionStore(ttl=0.5, cache_seconds=0)
    old, _ = short.create(ctx.sessions, ctx.site.box, ctx.tokens, auth("operator")["Authorization"][7:])
    time.sleep(0.6)
    store.create(ctx.sessions, ctx.site.box, ctx.tokens, tok)  # any sign-in purges expired rows
    with session_scope(ctx.sessions) as s:
        assert s.get(WebSessionRow, hash_token(old)) is None
        assert s.scalar(select(func.count()).select_from(WebSessionRow)) == 2
    assert short.load(ctx.sessions, ctx.site.box, ctx.tokens, old) is None


def test_last_seen_is_written_at_most_every_touch_seconds(ctx: Context,
                                                         auth: Callable[[str], dict[str, str]]) -> None:
    tok = auth("viewer")["Authorization"][7:]
    lazy, eager = SessionStore(cache_seconds=0, touch_every=3600), SessionStore(cache_seconds=0, touch_every=0)
    sid, _ = lazy.create(ctx.sessions, ctx.site.box, ctx.tokens, tok)

    def seen() -> object:
        with session_scope(ctx.sessions) as s:
            row = s.get(WebSessionRow, hash_token(sid))
            assert row is not None
            return row.last_seen_at

    first = seen()
    time.sleep(0.01)
    assert lazy.load(ctx.sessions, ctx.site.box, ctx.tokens, sid) is not None and seen() == first
    assert eager.load(ctx.sessions, ctx.site.box, ctx.tokens, sid) is not None and seen() != first


def dump(db_url: str) -> bytes:
    """Every byte the database holds for the test (SQLite: the file and its WAL; PostgreSQL: pg_dump)."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    url = db_url.replace("+psycopg", "")
    return subprocess.run(["pg_dump", "--data-only", url], check=True, capture_output=True, timeout=60).stdout


def test_neither_cookie_nor_token_is_stored_in_clear(apps: Apps, db_url: str, tmp_path: Path,
                                                     auth: Callable[[str], dict[str, str]]) -> None:
    a = apps()
    key = tmp_path / "data" / "secret.key"
    modes = {p: p.stat().st_mode & 0o777 for p in (key, Path(db_url.removeprefix("sqlite:///"))) if p.exists()}
    assert modes[key] == 0o600
    tok = token(a, "operator", auth("admin"))
    csrf = sign_in(a, tok)
    sid = cookie(a)
    stored = dump(db_url)
    assert hash_token(sid).encode() in stored  # the dump holds the session row ...
    for secret in (sid, tok, csrf):  # ... and none of the secrets
        assert secret.encode() not in stored
    assert {p: p.stat().st_mode & 0o777 for p in modes} == modes  # file modes unchanged
