"""dhcp: the dhcp_leases table (write-behind store of the DHCP server's leases)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dgxie.models.types

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = ('dhcp',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dhcp_leases',
    sa.Column('mac', sa.String(length=17), nullable=False),
    sa.Column('ip', sa.String(length=15), nullable=False),
    sa.Column('subnet', sa.String(length=18), nullable=False),
    sa.Column('hostname', sa.String(length=63), nullable=True),
    sa.Column('expires_at', dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', dgxie.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('mac', name=op.f('pk_dhcp_leases'))
    )
    with op.batch_alter_table('dhcp_leases', schema=None) as batch_op:
        batch_op.create_index('ix_dhcp_leases_ip', ['ip'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dhcp_leases', schema=None) as batch_op:
        batch_op.drop_index('ix_dhcp_leases_ip')
    op.drop_table('dhcp_leases')
