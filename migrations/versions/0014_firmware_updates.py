"""firmware update jobs: firmware_updates and their per-node progress (firmware_update_nodes)

Revision ID: 0014
Revises: 0013 (the job queue: `firmware_updates.job_id` names the queue job that runs it)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dgxie.models.types import JSONType, UTCDateTime

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "firmware_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("selector", JSONType, nullable=False),
        sa.Column("package", sa.String(length=200), nullable=False),
        sa.Column("baseline", sa.Boolean(), nullable=False),
        sa.Column("targets", JSONType, nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("drain", sa.Boolean(), nullable=False),
        sa.Column("multipart", sa.Boolean(), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=False),
        sa.Column("poll", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_firmware_updates_job_id_jobs"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_updates")),
    )
    op.create_index("ix_firmware_updates_status", "firmware_updates", ["status"])
    op.create_table(
        "firmware_update_nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("update_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("hostname", sa.String(length=63), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("drained", sa.Boolean(), nullable=False),
        sa.Column("task", sa.String(length=255), nullable=True),
        sa.Column("task_state", sa.String(length=32), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["update_id"], ["firmware_updates.id"],
                                name=op.f("fk_firmware_update_nodes_update_id_firmware_updates"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_firmware_update_nodes_node_id_nodes"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_update_nodes")),
    )
    op.create_index("ix_firmware_update_nodes_update_id_wave", "firmware_update_nodes", ["update_id", "wave"])


def downgrade() -> None:
    op.drop_index("ix_firmware_update_nodes_update_id_wave", table_name="firmware_update_nodes")
    op.drop_table("firmware_update_nodes")
    op.drop_index("ix_firmware_updates_status", table_name="firmware_updates")
    op.drop_table("firmware_updates")
