"""handoff: brokered secrets

Revision ID: 0008
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dgxie.models.types
from dgxie.models.types import JSONType

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = ('handoff',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('secrets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('value_enc', sa.LargeBinary(), nullable=False),
    sa.Column('roles', JSONType, nullable=False),
    sa.Column('created_at', dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_secrets')),
    sa.UniqueConstraint('name', name=op.f('uq_secrets_name'))
    )


def downgrade() -> None:
    op.drop_table('secrets')
