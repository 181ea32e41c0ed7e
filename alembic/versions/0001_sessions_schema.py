"""Sessions, session events, message outbox, integration logs, tenants.

Revision ID: 0001_sessions_schema
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001_sessions_schema"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the state list at this revision; later revisions change it explicitly.
SESSION_STATES = (
    "new",
    "code_sent",
    "password_required",
    "qr_pending",
    "authorized",
    "disconnected",
    "revoked",
    "expired",
    "banned",
    "deactivated",
    "duplicated",
    "failed",
)
TIMESTAMP = sa.DateTime(timezone=True)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        *_timestamps(),
    )

    states = ", ".join(f"'{s}'" for s in SESSION_STATES)
    op.create_table(
        "telegram_sessions",
        sa.Column(
            "id",
            postgresql.UUID(as_uuid=True),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("state", sa.String(32), nullable=False, server_default="new"),
        sa.Column("session_string_enc", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("api_key_alias", sa.String(64), nullable=True),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=True),
        sa.Column("dc_id", sa.SmallInteger(), nullable=True),
        sa.Column("lease_epoch", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("auth_error", sa.Text(), nullable=True),
        sa.Column("error_details", sa.Text(), nullable=True),
        sa.Column("last_activity_at", TIMESTAMP, nullable=True),
        *_timestamps(),
        sa.UniqueConstraint("tenant_id", "app_id", name="uq_telegram_sessions_tenant_app"),
        sa.CheckConstraint("kind IN ('user', 'bot')", name="ck_telegram_sessions_kind"),
        sa.CheckConstraint(f"state IN ({states})", name="ck_telegram_sessions_state"),
        sa.CheckConstraint("lease_epoch >= 0", name="ck_telegram_sessions_epoch"),
    )
    # (tenant_id, state) serves both "by tenant" and "by tenant and state" listings.
    op.create_index(
        "ix_telegram_sessions_tenant_state", "telegram_sessions", ["tenant_id", "state"]
    )
    op.create_index(
        "ix_telegram_sessions_state", "telegram_sessions", ["state", "last_activity_at"]
    )
    op.create_index(
        "ix_telegram_sessions_telegram_user_id", "telegram_sessions", ["telegram_user_id"]
    )
    op.create_index(
        "ix_telegram_sessions_last_activity_at", "telegram_sessions", ["last_activity_at"]
    )
    # One auth key, one row: two rows sharing a key would let two workers drive it at once
    # (Telegram answers AUTH_KEY_DUPLICATED and kills the authorisation).
    op.create_index(
        "uq_telegram_sessions_fingerprint",
        "telegram_sessions",
        ["fingerprint"],
        unique=True,
        postgresql_where=sa.text("fingerprint IS NOT NULL"),
    )

    op.create_table(
        "session_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "session_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("telegram_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lease_epoch", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_session_events_session", "session_events", ["session_id", "id"])
    op.create_index("ix_session_events_tenant", "session_events", ["tenant_id", "created_at"])

    op.create_table(
        "message_outbox",
        sa.Column(
            "id",
            postgresql.UUID(as_uuid=True),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("peer", sa.String(128), nullable=False),
        # A hash, not the text: the outbox proves what was asked without keeping content.
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("random_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_details", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        *_timestamps(),
        sa.UniqueConstraint(
            "tenant_id", "app_id", "idempotency_key", name="uq_message_outbox_idempotency"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "app_id"],
            ["telegram_sessions.tenant_id", "telegram_sessions.app_id"],
            ondelete="CASCADE",
            name="fk_message_outbox_session",
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'sent', 'failed')", name="ck_message_outbox_status"
        ),
    )
    op.create_index("ix_message_outbox_status", "message_outbox", ["status", "created_at"])

    op.create_table(
        "integration_logs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("app_id", sa.String(64), nullable=True),
        sa.Column("integration_type", sa.String(32), nullable=False, server_default="telegram"),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('success', 'error')", name="ck_integration_logs_status"),
    )
    op.create_index("ix_integration_logs_tenant", "integration_logs", ["tenant_id", "created_at"])
    op.create_index("ix_integration_logs_created_at", "integration_logs", ["created_at"])

    op.execute(
        """
        CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := now();
            RETURN NEW;
        END;
        $$;
        """
    )
    for table in ("tenants", "telegram_sessions", "message_outbox"):
        op.execute(
            f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    for table in ("integration_logs", "message_outbox", "session_events", "telegram_sessions"):
        op.drop_table(table)
    op.drop_table("tenants")
    op.execute("DROP FUNCTION IF EXISTS set_updated_at()")
