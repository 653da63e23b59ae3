"""Migration 0004 matches the models exactly (SQLite and PostgreSQL), and downgrades cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dgxie import db


def _diff(url: str) -> list[object]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            mc = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            return list(compare_metadata(mc, db.Base.metadata))
    finally:
        engine.dispose()


def test_models_match_the_migrations(db_url: str) -> None:
    assert _diff(db_url) == []


def test_0004_downgrade_and_upgrade(sqlite_url: str) -> None:
    cfg = db.alembic_config(sqlite_url)
    command.downgrade(cfg, "lifecycle@0001")
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        cols = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(nodes)")}
    engine.dispose()
    assert "install_seen_at" not in cols and "progress_suppressed" not in cols
    db.upgrade(sqlite_url)
    assert _diff(sqlite_url) == []
