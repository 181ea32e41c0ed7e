"""The audit trail covers every action: who (``actor``), on what (``target``), from the API,
the CLI and the jobs whose outcome changes state.

Revision ID: 0012_audit_trail
Revises: 0011_channel_rights
Create Date: 2026-12-03

- ``integration_logs`` gains ``actor`` (``api_key:<id>``, ``jwt:<sub>``, ``cli:<user>``,
  ``job:<task id>``, ``worker``) and ``target`` (``account:<app_id>``,
  ``channel:<id>``...) as columns, so the audit route filters on them; rows of the API's
  first form get their actor from ``details``.
- Job outcomes are written by triggers in the transaction that makes them, so an outcome
  is never without its audit row and costs no extra round trip:
  - ``session_events``: every state transition (``session.<state>``), actor the job that
    made it;
  - ``message_outbox``: a send's end (``message.sent`` / ``message.failed``);
  - ``telegram_channels``: a check's outcome (``channel.connected`` / ``channel.failed``
    / ``channel.rights_changed``), actor from the transaction's ``app.actor`` setting
    (the job sets it), else ``worker``.
- Reads for the tenant role filter by tenant, actor and time: an index on
  (tenant_id, actor, created_at).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012_audit_trail"
down_revision: str | None = "0011_channel_rights"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "integration_logs"

SESSION_TRIGGER = """
CREATE FUNCTION audit_session_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO integration_logs (tenant_id, app_id, actor, action, target, status, details)
    VALUES (
        NEW.tenant_id, NEW.app_id,
        CASE WHEN NEW.task_id IS NULL THEN 'worker' ELSE 'job:' || NEW.task_id END,
        left('session.' || NEW.to_state, 64),
        'account:' || NEW.app_id,
        'success',
        jsonb_build_object('from_state', NEW.from_state, 'to_state', NEW.to_state,
                           'reason', left(NEW.reason, 500))
    );
    RETURN NEW;
END $$;
CREATE TRIGGER audit_session_event AFTER INSERT ON session_events
    FOR EACH ROW EXECUTE FUNCTION audit_session_event();
"""

OUTBOX_TRIGGER = """
CREATE FUNCTION audit_send_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO integration_logs
        (tenant_id, app_id, actor, action, target, status, details, error_message)
    VALUES (
        NEW.tenant_id, NEW.app_id,
        CASE WHEN NEW.task_id IS NULL THEN 'worker' ELSE 'job:' || NEW.task_id END,
        CASE WHEN NEW.status = 'sent' THEN 'message.sent' ELSE 'message.failed' END,
        left('peer:' || NEW.peer, 256),
        CASE WHEN NEW.status = 'sent' THEN 'success' ELSE 'error' END,
        jsonb_build_object('idempotency_key', NEW.idempotency_key,
                           'telegram_message_id', NEW.telegram_message_id,
                           'attempts', NEW.attempts),
        NEW.error_code
    );
    RETURN NEW;
END $$;
CREATE TRIGGER audit_send_outcome AFTER UPDATE OF status ON message_outbox
    FOR EACH ROW WHEN (OLD.status = 'queued' AND NEW.status IN ('sent', 'failed'))
    EXECUTE FUNCTION audit_send_outcome();
"""

CHANNEL_TRIGGER = """
CREATE FUNCTION audit_channel_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO integration_logs
        (tenant_id, app_id, actor, action, target, status, details, error_message)
    VALUES (
        NEW.tenant_id, NEW.account_id,
        coalesce(nullif(current_setting('app.actor', true), ''), 'worker'),
        CASE WHEN NEW.status = 'failed' THEN 'channel.failed'
             WHEN OLD.status = 'connected' THEN 'channel.rights_changed'
             ELSE 'channel.connected' END,
        'channel:' || NEW.id,
        CASE WHEN NEW.status = 'failed' THEN 'error' ELSE 'success' END,
        jsonb_build_object('telegram_id', NEW.telegram_id, 'title', NEW.title,
                           'rights', NEW.rights),
        NEW.error_code
    );
    RETURN NEW;
END $$;
CREATE TRIGGER audit_channel_check AFTER UPDATE ON telegram_channels
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       OR OLD.rights_version IS DISTINCT FROM NEW.rights_version)
    EXECUTE FUNCTION audit_channel_check();
"""


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("actor", sa.String(128), nullable=True))
    op.add_column(TABLE, sa.Column("target", sa.String(256), nullable=True))
    op.execute(f"UPDATE {TABLE} SET actor = details->>'actor' WHERE actor IS NULL")
    op.create_index("ix_integration_logs_actor", TABLE, ["tenant_id", "actor", "created_at"])
    op.execute(SESSION_TRIGGER)
    op.execute(OUTBOX_TRIGGER)
    op.execute(CHANNEL_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_channel_check ON telegram_channels")
    op.execute("DROP FUNCTION IF EXISTS audit_channel_check()")
    op.execute("DROP TRIGGER IF EXISTS audit_send_outcome ON message_outbox")
    op.execute("DROP FUNCTION IF EXISTS audit_send_outcome()")
    op.execute("DROP TRIGGER IF EXISTS audit_session_event ON session_events")
    op.execute("DROP FUNCTION IF EXISTS audit_session_event()")
    op.drop_index("ix_integration_logs_actor", TABLE)
    op.drop_column(TABLE, "target")
    op.drop_column(TABLE, "actor")
