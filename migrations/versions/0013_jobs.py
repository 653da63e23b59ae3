"""jobs: a site-wide job queue, leader leases and instances (several dgxie instances on one database)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dgxie.models.types
from dgxie.models.types import JSONType

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("key IS NOT NULL AND status IN ('queued', 'running')")
ACTIVE_MIRROR = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("payload", JSONType(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("heartbeat_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("executions", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("progress", JSONType(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_status_id", "jobs", ["status", "id"])
    op.create_index("ux_jobs_active_key", "jobs", ["key"], unique=True, postgresql_where=ACTIVE, sqlite_where=ACTIVE)
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("last_run_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("started_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("process", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mirror_jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=True))
    # one queued/running sync per mirror, whichever instance starts it (the database is the arbiter);
    # older rows left active by a dead process are failed first, so the index can be built
    op.execute("UPDATE mirror_jobs SET status = 'failed', error = 'interrupted (upgrade to 0013)' "
               "WHERE status IN ('queued', 'running')")
    op.create_index("ux_mirror_jobs_active", "mirror_jobs", ["mirror"], unique=True,
                    postgresql_where=ACTIVE_MIRROR, sqlite_where=ACTIVE_MIRROR)


def downgrade() -> None:
    op.drop_index("ux_mirror_jobs_active", table_name="mirror_jobs")
    with op.batch_alter_table("mirror_jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner")
    op.drop_table("instances")
    op.drop_table("leases")
    op.drop_index("ux_jobs_active_key", table_name="jobs")
    op.drop_index("ix_jobs_status_id", table_name="jobs")
    op.drop_table("jobs")
