"""Inbound: listening sessions, stored update state, the event log and webhooks.

Revision ID: 0007_inbound_events
Revises: 0006_job_journal
Create Date: 2026-12-02

- ``telegram_sessions.listening``: whether placement keeps a live connection with updates
  on for the session (default true).
- ``inbound_state``: per session, Telegram's update state (pts, qts, date, seq) as far as
  the event log covers it, and the next per-session event ``sequence``. The row is locked
  by every append, so sequences are allocated in commit order and never skip.
- ``inbound_channel_state``: each channel's pts, per session.
- ``telegram_entities``: the entity cache (access hashes) of each session, so a takeover
  can address peers the previous holder learnt.
- ``inbound_events``: the durable event log. One row per update that matters, unique on
  ``dedup_key`` (built from Telegram's own ids), with a per-session ``sequence``.
  ``txid`` (the inserting transaction) lets a reader page safely by (txid, position): it
  reads only rows of transactions older than every transaction still running, so no row
  can later appear behind its cursor. ``published_at`` is set by the RabbitMQ relay after
  the broker's confirm, ``fanned_out_at`` by the webhook fan-out.
- ``append_inbound_event``: the one way a row enters the log (feed, triggers).
- Triggers turn finished sends (message_outbox) and state transitions (session_events)
  into ``message.sent`` / ``message.failed`` / ``session.state_changed`` events in the same
  transaction, so no outcome is recorded without its event.
- ``webhook_subscriptions``, ``webhook_deliveries``, ``webhook_attempts``: subscriptions
  (secrets encrypted by the session cipher), one delivery per (subscription, event) and
  every attempt made.
Every table is tenant-scoped under row-level security, like the milestone 1 tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0007_inbound_events"
down_revision: str | None = "0006_job_journal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKER = "integration_service_worker"
TENANT = "integration_service_tenant"
TIMESTAMP = sa.DateTime(timezone=True)
TABLES = (
    "inbound_state",
    "inbound_channel_state",
    "telegram_entities",
    "inbound_events",
    "webhook_subscriptions",
    "webhook_deliveries",
    "webhook_attempts",
)

APPEND_FUNCTION = """
CREATE FUNCTION append_inbound_event(
    p_tenant_id varchar, p_app_id varchar, p_type varchar, p_dedup_key varchar,
    p_occurred_at timestamptz, p_data jsonb
) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
    new_id uuid;
BEGIN
    INSERT INTO inbound_state (tenant_id, app_id) VALUES (p_tenant_id, p_app_id)
        ON CONFLICT (tenant_id, app_id) DO NOTHING;
    -- The lock serialises appends of one session: sequences follow commit order.
    SELECT next_sequence INTO next_seq FROM inbound_state
        WHERE tenant_id = p_tenant_id AND app_id = p_app_id FOR UPDATE;
    -- Checked after the lock, so a concurrent append of the same update is seen here.
    IF EXISTS (SELECT 1 FROM inbound_events WHERE tenant_id = p_tenant_id
               AND app_id = p_app_id AND dedup_key = p_dedup_key) THEN
        RETURN NULL;
    END IF;
    INSERT INTO inbound_events (tenant_id, app_id, sequence, type, dedup_key, occurred_at, data)
        VALUES (p_tenant_id, p_app_id, next_seq, p_type, p_dedup_key, p_occurred_at, p_data)
        RETURNING id INTO new_id;
    UPDATE inbound_state SET next_sequence = next_seq + 1
        WHERE tenant_id = p_tenant_id AND app_id = p_app_id;
    RETURN new_id;
END $$;
"""

OUTBOX_TRIGGER = """
CREATE FUNCTION inbound_event_for_send() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM append_inbound_event(
        NEW.tenant_id, NEW.app_id,
        CASE WHEN NEW.status = 'sent' THEN 'message.sent' ELSE 'message.failed' END,
        'send:' || NEW.idempotency_key,
        now(),
        jsonb_build_object(
            'idempotency_key', NEW.idempotency_key,
            'peer', NEW.peer,
            'telegram_message_id', NEW.telegram_message_id,
            'error_code', NEW.error_code,
            'attempts', NEW.attempts,
            'task_id', NEW.task_id
        )
    );
    RETURN NEW;
END $$;
CREATE TRIGGER inbound_event_for_send AFTER UPDATE OF status ON message_outbox
    FOR EACH ROW WHEN (OLD.status = 'queued' AND NEW.status IN ('sent', 'failed'))
    EXECUTE FUNCTION inbound_event_for_send();
"""

TRANSITION_TRIGGER = """
CREATE FUNCTION inbound_event_for_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM append_inbound_event(
        NEW.tenant_id, NEW.app_id, 'session.state_changed',
        'state:' || NEW.id::text,
        NEW.created_at,
        jsonb_build_object(
            'from_state', NEW.from_state,
            'to_state', NEW.to_state,
            'reason', NEW.reason
        )
    );
    RETURN NEW;
END $$;
CREATE TRIGGER inbound_event_for_transition AFTER INSERT ON session_events
    FOR EACH ROW EXECUTE FUNCTION inbound_event_for_transition();
"""


def _tenant_key() -> list[sa.Column]:
    return [
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=False),
    ]


def _session_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "app_id"],
        ["telegram_sessions.tenant_id", "telegram_sessions.app_id"],
        ondelete="CASCADE",
        name=f"fk_{table}_session",
    )


def upgrade() -> None:
    op.add_column(
        "telegram_sessions",
        sa.Column("listening", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "inbound_state",
        *_tenant_key(),
        # NULL until the first updates.getState: nothing before it is ours to replay.
        sa.Column("pts", sa.Integer(), nullable=True),
        sa.Column("qts", sa.Integer(), nullable=True),
        sa.Column("date", sa.BigInteger(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("next_sequence", sa.BigInteger(), nullable=False, server_default="1"),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "app_id"),
        _session_fk("inbound_state"),
    )
    op.create_table(
        "inbound_channel_state",
        *_tenant_key(),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("pts", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "channel_id"),
        _session_fk("inbound_channel_state"),
    )
    op.create_table(
        "telegram_entities",
        *_tenant_key(),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("access_hash", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "entity_id"),
        _session_fk("telegram_entities"),
    )
    op.create_table(
        "inbound_events",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("position", sa.BigInteger(), sa.Identity(), nullable=False, unique=True),
        *_tenant_key(),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", TIMESTAMP, nullable=True),
        sa.Column("fanned_out_at", TIMESTAMP, nullable=True),
        sa.UniqueConstraint("tenant_id", "app_id", "dedup_key", name="uq_inbound_events_dedup"),
        # A session's events go with it (its sequence counter in inbound_state does too).
        _session_fk("inbound_events"),
        sa.UniqueConstraint("tenant_id", "app_id", "sequence", name="uq_inbound_events_sequence"),
    )
    op.create_index(
        "ix_inbound_events_unpublished",
        "inbound_events",
        ["position"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index(
        "ix_inbound_events_not_fanned_out",
        "inbound_events",
        ["position"],
        postgresql_where=sa.text("fanned_out_at IS NULL"),
    )
    # xid8 has no SQLAlchemy type; the column is only ever compared in SQL.
    op.execute(
        "ALTER TABLE inbound_events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id()"
    )
    op.execute(
        "CREATE INDEX ix_inbound_events_tenant_cursor ON inbound_events (tenant_id, txid, position)"
    )
    op.create_index("ix_inbound_events_created_at", "inbound_events", ["created_at"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column(
            "tenant_id",
            sa.String(64),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.String(40)), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        # The secret being rotated out: still signs until previous_secret_expires_at.
        sa.Column("previous_secret_enc", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", TIMESTAMP, nullable=True),
        sa.Column("max_in_flight", sa.Integer(), nullable=False, server_default="4"),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_webhook_subscriptions_tenant", "webhook_subscriptions", ["tenant_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column(
            "subscription_id",
            sa.Uuid(),
            sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "event_id",
            sa.Uuid(),
            sa.ForeignKey("inbound_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("claimed_until", TIMESTAMP, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_latency_ms", sa.Float(), nullable=True),
        sa.Column("delivered_at", TIMESTAMP, nullable=True),
        sa.Column("dead_reason", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
        sa.CheckConstraint(
            "status IN ('pending', 'in_flight', 'delivered', 'dead', 'cancelled')",
            name="webhook_deliveries_status",
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'in_flight')"),
    )
    op.create_index(
        "ix_webhook_deliveries_subscription", "webhook_deliveries", ["subscription_id", "status"]
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.Uuid(),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("attempted_at", TIMESTAMP, nullable=False, server_default=sa.func.now()),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id"])

    op.execute(APPEND_FUNCTION)
    op.execute(OUTBOX_TRIGGER)
    op.execute(TRANSITION_TRIGGER)

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
    op.execute("DROP TRIGGER IF EXISTS inbound_event_for_transition ON session_events")
    op.execute("DROP TRIGGER IF EXISTS inbound_event_for_send ON message_outbox")
    op.execute("DROP FUNCTION IF EXISTS inbound_event_for_transition()")
    op.execute("DROP FUNCTION IF EXISTS inbound_event_for_send()")
    op.execute(
        "DROP FUNCTION IF EXISTS "
        "append_inbound_event(varchar, varchar, varchar, varchar, timestamptz, jsonb)"
    )
    for table in reversed(TABLES):
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.drop_table(table)
    op.drop_column("telegram_sessions", "listening")
