"""agent: the deploy agent's one-time credential on each node (stored hashed)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dgxie.models.types

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("agent_token_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("agent_token_at", dgxie.models.types.UTCDateTime(timezone=True), nullable=True))
        batch.create_unique_constraint(batch.f("uq_nodes_agent_token_hash"), ["agent_token_hash"])


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_constraint(batch.f("uq_nodes_agent_token_hash"), type_="unique")
        batch.drop_column("agent_token_at")
        batch.drop_column("agent_token_hash")
