"""upsert_telegram_session: the one write path for session material, fenced by epoch.

Revision ID: 0002_upsert_telegram_session
Revises: 0001_sessions_schema
Create Date: 2026-11-21

Why a function and INSERT ... ON CONFLICT: the seed post-mortem (003) shows the
update-then-insert version racing with itself and failing as "database_save_failed".
ON CONFLICT takes the row lock atomically, so N concurrent writers of one key give one
row and the last writer wins. The lease epoch fences a stale owner: its write finds a
newer epoch in the row, updates nothing, and is refused with SQLSTATE IS001.

Material fields (ciphertext, key id, alias, user id, dc, fingerprint) keep their stored
value when passed NULL, so a state-only save cannot wipe a session by accident; the error
fields are always overwritten so a success clears an old error.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_upsert_telegram_session"
down_revision: str | None = "0001_sessions_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "text, text, text, text, bigint, text, text, text, bigint, integer, text, text, text"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION upsert_telegram_session(
            p_tenant_id text,
            p_app_id text,
            p_kind text,
            p_state text,
            p_lease_epoch bigint,
            p_session_string_enc text DEFAULT NULL,
            p_key_id text DEFAULT NULL,
            p_api_key_alias text DEFAULT NULL,
            p_telegram_user_id bigint DEFAULT NULL,
            p_dc_id integer DEFAULT NULL,
            p_fingerprint text DEFAULT NULL,
            p_auth_error text DEFAULT NULL,
            p_error_details text DEFAULT NULL
        ) RETURNS uuid
        LANGUAGE plpgsql
        AS $$
        DECLARE
            v_id uuid;
            v_stored_epoch bigint;
        BEGIN
            IF p_session_string_enc IS NOT NULL AND char_length(p_session_string_enc) > 65536 THEN
                RAISE EXCEPTION 'session_string_enc is % characters, the limit is 65536',
                    char_length(p_session_string_enc)
                    USING ERRCODE = '22001';
            END IF;

            INSERT INTO telegram_sessions AS s (
                tenant_id, app_id, kind, state, lease_epoch, session_string_enc, key_id,
                api_key_alias, telegram_user_id, dc_id, fingerprint, auth_error,
                error_details, last_activity_at
            ) VALUES (
                p_tenant_id, p_app_id, p_kind, p_state, p_lease_epoch, p_session_string_enc,
                p_key_id, p_api_key_alias, p_telegram_user_id, p_dc_id, p_fingerprint,
                p_auth_error, p_error_details, now()
            )
            ON CONFLICT (tenant_id, app_id) DO UPDATE SET
                kind = EXCLUDED.kind,
                state = EXCLUDED.state,
                lease_epoch = EXCLUDED.lease_epoch,
                session_string_enc = COALESCE(EXCLUDED.session_string_enc, s.session_string_enc),
                key_id = COALESCE(EXCLUDED.key_id, s.key_id),
                api_key_alias = COALESCE(EXCLUDED.api_key_alias, s.api_key_alias),
                telegram_user_id = COALESCE(EXCLUDED.telegram_user_id, s.telegram_user_id),
                dc_id = COALESCE(EXCLUDED.dc_id, s.dc_id),
                fingerprint = COALESCE(EXCLUDED.fingerprint, s.fingerprint),
                auth_error = EXCLUDED.auth_error,
                error_details = EXCLUDED.error_details,
                last_activity_at = now()
            WHERE s.lease_epoch <= EXCLUDED.lease_epoch
            RETURNING s.id INTO v_id;

            IF v_id IS NULL THEN
                SELECT lease_epoch INTO v_stored_epoch
                FROM telegram_sessions
                WHERE tenant_id = p_tenant_id AND app_id = p_app_id;
                RAISE EXCEPTION 'stale lease epoch % (stored epoch is %)',
                    p_lease_epoch, v_stored_epoch
                    USING ERRCODE = 'IS001';
            END IF;
            RETURN v_id;
        END;
        $$;
        """
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS upsert_telegram_session({SIGNATURE})")
