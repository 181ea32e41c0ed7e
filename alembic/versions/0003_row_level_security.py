"""Roles, grants and row-level security isolating tenants.

Revision ID: 0003_row_level_security
Revises: 0002_upsert_telegram_session
Create Date: 2026-11-21

Two NOLOGIN roles that login users are granted (or that a superuser SET ROLEs to):
- integration_service_worker: the service role; BYPASSRLS, reads and writes every tenant.
- integration_service_tenant: scoped to the tenant in the `app.tenant_id` setting.
Roles are cluster-wide and may serve several databases, so downgrade revokes this
database's grants and leaves the roles in place.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_row_level_security"
down_revision: str | None = "0002_upsert_telegram_session"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKER = "integration_service_worker"
TENANT = "integration_service_tenant"
TENANT_TABLES = ("telegram_sessions", "session_events", "message_outbox", "integration_logs")
ALL_TABLES = ("tenants", *TENANT_TABLES)
UPSERT = (
    "upsert_telegram_session(text, text, text, text, bigint, text, text, text, bigint, "
    "integer, text, text, text)"
)


def _create_role(name: str, attributes: str) -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN {attributes};
            END IF;
        END
        $$;
        """
    )


def upgrade() -> None:
    _create_role(WORKER, "BYPASSRLS")
    _create_role(TENANT, "NOBYPASSRLS")

    op.execute(f"GRANT USAGE ON SCHEMA public TO {WORKER}, {TENANT}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(ALL_TABLES)} TO {WORKER}")
    op.execute(f"GRANT SELECT ON {', '.join(TENANT_TABLES)} TO {TENANT}")
    op.execute(f"GRANT SELECT ON tenants TO {TENANT}")
    # Functions are executable by PUBLIC by default; the write path is the worker's only.
    op.execute(f"REVOKE ALL ON FUNCTION {UPSERT} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {UPSERT} TO {WORKER}")

    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        # FORCE: the table owner is held to the policy too; only BYPASSRLS roles and
        # superusers see across tenants.
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (tenant_id = current_setting('app.tenant_id', true)) "
            "WITH CHECK (tenant_id = current_setting('app.tenant_id', true))"
        )
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON tenants "
        "USING (id = current_setting('app.tenant_id', true))"
    )


def downgrade() -> None:
    for table in ALL_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON FUNCTION {UPSERT} FROM {WORKER}")
    op.execute(f"GRANT EXECUTE ON FUNCTION {UPSERT} TO PUBLIC")
    op.execute(f"REVOKE ALL ON {', '.join(ALL_TABLES)} FROM {WORKER}, {TENANT}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {WORKER}, {TENANT}")
