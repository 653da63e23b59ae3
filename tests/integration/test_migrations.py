"""The Alembic migrations and the ORM models describe the same schema, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import dgxie.models  # noqa: F401
from dgxie import db


def test_models_match_migrations(db_url: str) -> None:
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(mc, db.Base.metadata)
        heads = set(mc.get_current_heads())
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    script = ScriptDirectory.from_config(db.alembic_config(db_url))
    assert heads == set(script.get_heads())
    assert len(heads) == 1, f"several migration heads {heads}: add a merge revision"


def test_upgrade_is_idempotent(sqlite_url: str) -> None:
    db.upgrade(sqlite_url)
    db.upgrade(sqlite_url)
