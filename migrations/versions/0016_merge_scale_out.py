"""Merge the scale-out branches (issue 15: the job queue and instances, firmware update jobs) into one head.

Revision ID: 0016
Revises: 0013, 0014
Create Date: 2026-11-30 14:45:00
"""

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | Sequence[str] | None = ("0013", "0014")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
