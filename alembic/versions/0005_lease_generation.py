"""Record which Redis data set ("lease generation") the last lease was taken in.

Revision ID: 0005_lease_generation
Revises: 0004_rewrap_session_material
Create Date: 2026-11-21

A claim of a session whose last lease lived in another Redis data set (Redis restarted
empty) waits one heartbeat, so the old owner has noticed and disconnected; a claim in the
same data set follows the ordinary lease rules. See integration_service/leases/generation.py.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005_lease_generation"
down_revision: str | None = "0004_rewrap_session_material"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("telegram_sessions", sa.Column("lease_generation", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("telegram_sessions", "lease_generation")
