"""rewrap_session_material: compare-and-set of a session's ciphertext for key rotation.

Revision ID: 0004_rewrap_session_material
Revises: 0003_row_level_security
Create Date: 2026-11-22

Rotation re-wraps rows while their sessions stay online, so it must never overwrite a
save that happened after it read the row: the new ciphertext is written only while the
stored one still equals the ciphertext that was re-wrapped. A concurrent owner's save
therefore wins and the rotation counts the row as skipped. Only the ciphertext and its
key id change; state and lease epoch belong to the session's owner, not to rotation,
which is also why this is not a call of upsert_telegram_session (that one moves both).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_rewrap_session_material"
down_revision: str | None = "0003_row_level_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKER = "integration_service_worker"
REWRAP = "rewrap_session_material(text, text, text, text, text)"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION rewrap_session_material(
            p_tenant_id text,
            p_app_id text,
            p_expected_enc text,
            p_new_enc text,
            p_new_key_id text
        ) RETURNS boolean
        LANGUAGE plpgsql
        AS $$
        DECLARE
            v_changed integer;
        BEGIN
            IF p_expected_enc IS NULL OR p_new_enc IS NULL OR p_new_key_id IS NULL THEN
                RAISE EXCEPTION 'expected ciphertext, new ciphertext and key id are required'
                    USING ERRCODE = '23502';
            END IF;
            IF char_length(p_new_enc) > 65536 THEN
                RAISE EXCEPTION 'session_string_enc is % characters, the limit is 65536',
                    char_length(p_new_enc)
                    USING ERRCODE = '22001';
            END IF;

            UPDATE telegram_sessions
            SET session_string_enc = p_new_enc,
                key_id = p_new_key_id
            WHERE tenant_id = p_tenant_id
              AND app_id = p_app_id
              AND session_string_enc = p_expected_enc;
            GET DIAGNOSTICS v_changed = ROW_COUNT;
            RETURN v_changed = 1;
        END;
        $$;
        """
    )
    # Functions are executable by PUBLIC by default; this write path is the worker's only.
    op.execute(f"REVOKE ALL ON FUNCTION {REWRAP} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {REWRAP} TO {WORKER}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {REWRAP}")
