"""Trace context on events: the ``traceparent`` of the work that wrote each event.

Revision ID: 0009_trace_context
Revises: 0008_http_api
Create Date: 2026-12-03

- ``inbound_events.traceparent``: the W3C trace context current when the row was written
  (the feed's commit of a Telegram update, a send job's outcome), so the relay's publish
  and the webhook call continue that trace in other processes. NULL when none was set.
- ``append_inbound_event`` reads it from the transaction's ``app.traceparent`` setting
  (``set_config(..., true)``), so the triggers that append events (send outcomes, state
  changes) take it too without a new argument.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009_trace_context"
down_revision: str | None = "0008_http_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION append_inbound_event(
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
    INSERT INTO inbound_events (tenant_id, app_id, sequence, type, dedup_key, occurred_at, data,
                                traceparent)
        VALUES (p_tenant_id, p_app_id, next_seq, p_type, p_dedup_key, p_occurred_at, p_data,
                nullif(current_setting('app.traceparent', true), ''))
        RETURNING id INTO new_id;
    UPDATE inbound_state SET next_sequence = next_seq + 1
        WHERE tenant_id = p_tenant_id AND app_id = p_app_id;
    RETURN new_id;
END $$;
"""


def upgrade() -> None:
    # W3C traceparent is 55 characters; room for future versions of the format.
    op.add_column("inbound_events", sa.Column("traceparent", sa.String(128), nullable=True))
    op.execute(APPEND_FUNCTION)


def downgrade() -> None:
    # 0007's function: the same body without the column.
    op.execute(
        APPEND_FUNCTION.replace(",\n                                traceparent)", ")").replace(
            ",\n                nullif(current_setting('app.traceparent', true), ''))", ")"
        )
    )
    op.drop_column("inbound_events", "traceparent")
