"""Migration 0006 creates exactly the mirror tables the models declare (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dgxie import db


def test_models_match_migrations(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
    finally:
        engine.dispose()
    mine = [d for d in diff if "mirror" in repr(d)]
    assert mine == []
