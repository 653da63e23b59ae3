"""trust: boot tokens no longer stored (a public nonce + the token's sha256); one node credential slot

The boot token becomes HMAC(site key, boot_nonce): the database keeps the nonce (public) and the
token's sha256 (for lookup), never the token. The old tokens become nonces, so every token issued
before this migration stops working; `boot_token_hash` is filled by the application (it holds the
key) on first use (`dgxie.nodes.credentials.backfill`). The deploy agent's token columns become the
node's one credential slot (hash, purpose, issue time): agent, install or bootstrap.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_constraint(batch.f("uq_nodes_boot_token"), type_="unique")
        batch.alter_column("boot_token", new_column_name="boot_nonce", existing_type=sa.String(length=64))
        batch.add_column(sa.Column("boot_token_hash", sa.String(length=64), nullable=True))
        batch.drop_constraint(batch.f("uq_nodes_agent_token_hash"), type_="unique")
        batch.alter_column("agent_token_hash", new_column_name="credential_hash", existing_type=sa.String(length=64))
        batch.alter_column("agent_token_at", new_column_name="credential_at")
        batch.add_column(sa.Column("credential_purpose", sa.String(length=16), nullable=True))
    with op.batch_alter_table("nodes") as batch:
        batch.create_unique_constraint(batch.f("uq_nodes_boot_nonce"), ["boot_nonce"])
        batch.create_unique_constraint(batch.f("uq_nodes_boot_token_hash"), ["boot_token_hash"])
        batch.create_unique_constraint(batch.f("uq_nodes_credential_hash"), ["credential_hash"])


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_constraint(batch.f("uq_nodes_credential_hash"), type_="unique")
        batch.drop_constraint(batch.f("uq_nodes_boot_token_hash"), type_="unique")
        batch.drop_constraint(batch.f("uq_nodes_boot_nonce"), type_="unique")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("credential_purpose")
        batch.alter_column("credential_at", new_column_name="agent_token_at")
        batch.alter_column("credential_hash", new_column_name="agent_token_hash", existing_type=sa.String(length=64))
        batch.drop_column("boot_token_hash")
        batch.alter_column("boot_nonce", new_column_name="boot_token", existing_type=sa.String(length=64))
    with op.batch_alter_table("nodes") as batch:
        batch.create_unique_constraint(batch.f("uq_nodes_boot_token"), ["boot_token"])
        batch.create_unique_constraint(batch.f("uq_nodes_agent_token_hash"), ["agent_token_hash"])
