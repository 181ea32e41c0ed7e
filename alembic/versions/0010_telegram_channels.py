"""Channels and groups an account posts to (seed 004's ``telegram_channels``), first form.

Revision ID: 0010_telegram_channels
Revises: 0009_trace_context
Create Date: 2026-12-03

- ``telegram_channels``: a channel or group connected to one of the tenant's accounts or
  bots, by the peer it was named with (@username or marked id). Its title, type, member
  count and the account's rights come with the resources issue (resolution and
  ``channels.getParticipant``); until then a channel is an account and a peer.
  Unique per (tenant, account, peer); removed with its account's row.
- Tenant-scoped under row-level security; the tenant role (the API) reads, connects and
  removes them itself, so a tenant can only ever write its own rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010_telegram_channels"
down_revision: str | None = "0009_trace_context"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKER = "integration_service_worker"
TENANT = "integration_service_tenant"
TABLE = "telegram_channels"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("peer", sa.String(64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["telegram_sessions.tenant_id", "telegram_sessions.app_id"],
            ondelete="CASCADE",
            name="fk_telegram_channels_account",
        ),
        sa.UniqueConstraint("tenant_id", "account_id", "peer", name="uq_telegram_channels_peer"),
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {WORKER}")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON {TABLE} TO {TENANT}")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {TABLE} "
        "USING (tenant_id = current_setting('app.tenant_id', true)) "
        "WITH CHECK (tenant_id = current_setting('app.tenant_id', true))"
    )


def downgrade() -> None:
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {TABLE}")
    op.drop_table(TABLE)
