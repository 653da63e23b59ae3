"""Merge the feature branches (dhcp, lifecycle, firmware, mirror, handoff) into one head.

Revision ID: 0009
Revises: 0002, 0004, 0005, 0006, 0008
Create Date: 2026-11-28 21:04:55
"""

from collections.abc import Sequence

revision: str = "0009"
down_revision: str | Sequence[str] | None = ("0002", "0004", "0005", "0006", "0008")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
