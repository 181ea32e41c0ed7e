"""Alembic environment: migrates the database named by DATABASE_URL (or -x url=...)."""

from logging.config import fileConfig

from sqlalchemy import create_engine, pool

from alembic import context
from integration_service.settings import get_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)


def _database_url() -> str:
    # Tests and operators can point one migration run at another database without
    # touching the environment of the process.
    explicit = context.get_x_argument(as_dictionary=True).get("url")
    return explicit or config.attributes.get("url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    settings = get_settings()
    # Bounded like every other command: an unreachable database fails within
    # DEPENDENCY_TIMEOUT (libpq's minimum is 2 s), never after psycopg's default 130 s.
    timeout = min(settings.dependency_timeout, settings.database_connect_timeout)
    engine = create_engine(
        _database_url(),
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": max(2, int(timeout))},
    )
    with engine.connect() as conn:
        context.configure(connection=conn, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
