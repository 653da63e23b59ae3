"""Migration 0002 (branch label "dhcp") creates exactly what the DhcpLease model declares, on
SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dgxie import db


def test_dhcp_leases_matches_model(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
    finally:
        engine.dispose()
    mine = [d for d in diff if "dhcp_leases" in repr(d)]
    assert mine == []
