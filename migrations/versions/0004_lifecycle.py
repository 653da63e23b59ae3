"""lifecycle: install progress columns on nodes (last installer contact, progress aggregation)

Revision ID: 0004
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dgxie.models.types

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("lifecycle",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("install_seen_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("progress_logged_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("progress_suppressed", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("progress_suppressed")
        batch_op.drop_column("progress_logged_at")
        batch_op.drop_column("install_seen_at")
