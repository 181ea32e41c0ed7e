"""The HTTP API: tenant API keys, idempotent requests, accepted messages.

Revision ID: 0008_http_api
Revises: 0007_inbound_events
Create Date: 2026-12-03

- ``api_keys``: a tenant's keys. Only the SHA-256 of a key is stored (keys are 256-bit
  random, so a fast hash is enough: nothing to brute-force), with its scopes, a short hint
  (its last four characters) to tell keys apart, when it was last used, and when it was
  revoked.
- ``api_idempotency``: the first answer to each POST made with an ``Idempotency-Key``, per
  tenant and key, with a hash of the request it answered: a repeat gets the same answer,
  a different request under the same key a 409.
- ``api_messages``: every send the API accepted (its message id), so ``GET
  /messages/{id}`` knows a message before its worker has started on it, and 404s one it
  never accepted.
Tenant-scoped under row-level security like every other table; the tenant role reads.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0008_http_api"
down_revision: str | None = "0007_inbound_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKER = "integration_service_worker"
TENANT = "integration_service_tenant"
TIMESTAMP = sa.DateTime(timezone=True)
TABLES = ("api_keys", "api_idempotency", "api_messages")


def _tenant_column() -> sa.Column[str]:
    return sa.Column(
        "tenant_id", sa.String(64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        _tenant_column(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant_id"])
    op.create_table(
        "api_idempotency",
        _tenant_column(),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "idempotency_key"),
    )
    op.create_index("ix_api_idempotency_created_at", "api_idempotency", ["created_at"])
    op.create_table(
        "api_messages",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _tenant_column(),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "app_id", "idempotency_key", name="uq_api_messages_send"),
    )
    op.create_index("ix_api_messages_created_at", "api_messages", ["created_at"])

    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {WORKER}")
    op.execute(f"GRANT SELECT ON {', '.join(TABLES)} TO {TENANT}")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (tenant_id = current_setting('app.tenant_id', true)) "
            "WITH CHECK (tenant_id = current_setting('app.tenant_id', true))"
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.drop_table(table)
