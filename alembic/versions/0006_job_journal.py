"""The job journal: one row per finished job, so a redelivered job finishes as a no-op.

Revision ID: 0006_job_journal
Revises: 0005_lease_generation
Create Date: 2026-12-02

RabbitMQ redelivers a job whose acknowledgement it never got (a broker restart, a dropped
channel, a consumer timeout). Acks_late makes that a re-run of work that may already be
done: a QR login that finished, a rotation, a validation. The worker records each job's
first outcome here, by task id, before acknowledging it; a later delivery of the same job
reads it and returns that outcome instead of running again. Rows are kept for
JOB_JOURNAL_RETENTION (7 days by default), longer than any delivery can stay unacknowledged
or deferred. Sends are journalled by the outbox, keyed by their idempotency key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006_job_journal"
down_revision: str | None = "0005_lease_generation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKER = "integration_service_worker"
TENANT = "integration_service_tenant"


def upgrade() -> None:
    op.create_table(
        "job_journal",
        sa.Column("task_id", sa.String(255), primary_key=True),
        sa.Column("task_name", sa.String(200), nullable=False),
        # NULL for jobs of no tenant (sweeps, key rotation): invisible to every tenant.
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("app_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", postgresql.JSONB(), nullable=True),
        sa.Column(
            "completed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("status IN ('succeeded', 'dead_lettered')", name="job_journal_status"),
    )
    op.create_index("ix_job_journal_completed_at", "job_journal", ["completed_at"])
    op.execute(f"GRANT SELECT, INSERT, DELETE ON job_journal TO {WORKER}")
    op.execute(f"GRANT SELECT ON job_journal TO {TENANT}")
    op.execute("ALTER TABLE job_journal ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE job_journal FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON job_journal "
        "USING (tenant_id = current_setting('app.tenant_id', true)) "
        "WITH CHECK (tenant_id = current_setting('app.tenant_id', true))"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON job_journal")
    op.drop_index("ix_job_journal_completed_at", table_name="job_journal")
    op.drop_table("job_journal")
