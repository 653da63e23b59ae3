"""change notifications (PostgreSQL LISTEN/NOTIFY triggers), the dhcp_peers heartbeat table and
dhcp_leases.updated_at indexed (two DHCP servers merge each other's recent lease rows)

Statement-level AFTER INSERT/UPDATE/DELETE triggers on nodes, interfaces, profiles and images call
pg_notify('dgxie_changes', <table name>): every writer (any dgxie instance, the CLI, raw SQL) is
caught, and PostgreSQL delivers the notification only when the transaction commits (and once per
distinct payload per transaction). SQLite gets the table only (one instance polls).

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dgxie.models.types

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("nodes", "interfaces", "profiles", "images")


def upgrade() -> None:
    op.create_table(
        "dhcp_peers",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("beat", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_dhcp_peers")),
    )
    op.create_index("ix_dhcp_leases_updated_at", "dhcp_leases", ["updated_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION dgxie_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('dgxie_changes', TG_TABLE_NAME);
            RETURN NULL;
        END $$""")
    for table in TABLES:
        op.execute(f"CREATE TRIGGER dgxie_notify_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION dgxie_notify_change()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS dgxie_notify_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS dgxie_notify_change()")
    op.drop_index("ix_dhcp_leases_updated_at", table_name="dhcp_leases")
    op.drop_table("dhcp_peers")
