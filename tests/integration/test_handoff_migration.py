"""Migration 0008 creates exactly the `secrets` table the model describes (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dgxie import db


def test_secrets_table_matches_the_model(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            mc = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(mc, db.Base.metadata)
    finally:
        engine.dispose()
    mine = [d for d in diffs if "secrets" in repr(d)]
    assert mine == []
    assert db.Base.metadata.tables["secrets"] is not None
