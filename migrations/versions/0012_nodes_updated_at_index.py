"""nodes.updated_at indexed: the read caches' change signal (`dgxie.nodes.generation`) is index-only

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_nodes_updated_at", "nodes", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_nodes_updated_at", table_name="nodes")
