"""/readyz (readiness), on SQLite and PostgreSQL: 200 only when the database answers and its
schema is at `db.SCHEMA_HEAD`; 503 with Retry-After and a `detail` naming why otherwise (schema
behind, ahead, missing; database unreachable). /healthz (liveness) is unaffected by the schema.
The answer is reused for `ops.READY_FRESH` s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from dgxie import db, resources
from dgxie.api import ops
from dgxie.app import create_app
from dgxie.compose import build_context
from dgxie.config import Settings
from dgxie.context import Context
from tests.support.net import free_port


@pytest.fixture(autouse=True)
def uncached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "READY_FRESH", 0.0)


@contextmanager
def stamped(ctx: Context, revision: str) -> Iterator[None]:
    """The database's alembic_version set to `revision`, put back to head afterwards (the
    PostgreSQL test database is shared by the session)."""
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    try:
        yield
    finally:
        with ctx.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": db.SCHEMA_HEAD})


def not_ready(client: TestClient) -> str:
    r = client.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "2"
    detail: str = r.json()["detail"]
    return detail


def test_ready_at_head(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    assert "retry-after" not in r.headers


def test_schema_behind_is_503_and_healthz_stays_ok(ctx: Context, client: TestClient) -> None:
    shipped = {p.name.split("_", 1)[0] for p in (resources.migrations() / "versions").glob("*.py")}
    older = max(r for r in shipped if r < db.SCHEMA_HEAD)  # an older shipped revision (numbers have gaps)
    with stamped(ctx, older):
        assert not_ready(client) == (f"database schema behind: revision {older}, this dgxie needs "
                                     f"{db.SCHEMA_HEAD} (run `dgxie db upgrade`)")
        assert client.get("/healthz").status_code == 200  # liveness: the database answers
    assert client.get("/readyz").status_code == 200


def test_schema_ahead_is_503(ctx: Context, client: TestClient) -> None:
    with stamped(ctx, "9999"):
        assert not_ready(client) == f"database schema ahead: revision 9999 is newer than this dgxie ({db.SCHEMA_HEAD})"


def test_no_schema_is_503(ctx: Context, client: TestClient) -> None:
    with ctx.engine.begin() as conn:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        conn.execute(text("DELETE FROM alembic_version"))
    try:
        assert not_ready(client).startswith("database schema missing: run `dgxie db upgrade`")
    finally:
        with ctx.engine.begin() as conn:
            for rev in rows:
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": rev})


def test_the_answer_is_reused_for_ready_fresh(monkeypatch: pytest.MonkeyPatch, ctx: Context,
                                              client: TestClient) -> None:
    monkeypatch.setattr(ops, "READY_FRESH", 0.5)
    assert client.get("/readyz").status_code == 200
    with stamped(ctx, "9999"):
        assert client.get("/readyz").status_code == 200  # cached: no query
        time.sleep(0.6)
        assert client.get("/readyz").status_code == 503


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_unreachable_database_is_503(kind: str, tmp_path: Path) -> None:
    if kind == "sqlite":  # a directory where the database file should be: "unable to open database file"
        (tmp_path / "db").mkdir()
        url = f"sqlite:///{tmp_path / 'db'}"
    else:  # a loopback port nothing listens on: connection refused
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    ctx = build_context(Settings(database_url=url, data_dir=tmp_path / "data"), migrate=False)
    try:  # no lifespan (`with`): the background services would fail to start without the database
        client = TestClient(create_app(ctx))
        assert not_ready(client) == "database unavailable"
        assert client.get("/healthz").status_code == 503
    finally:
        ctx.engine.dispose()
