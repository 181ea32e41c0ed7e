"""``integration-service migrate``: bring the database to the newest schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from integration_service.cli.budget import remaining
from integration_service.cli.output import guarded
from integration_service.cli.wiring import current_settings
from integration_service.errors import PermanentError

if TYPE_CHECKING:
    from alembic.config import Config

    from integration_service.settings import Settings

# Alembic is imported when a migration runs: ``--help`` loads every command module.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


class MigrationsMissing(PermanentError, FileNotFoundError):
    """The installed package holds no Alembic migrations (a broken build or install)."""

    code = "migrations_missing"


def migrations_dir() -> Path:
    """The Alembic scripts: ``integration_service/migrations`` in an installed wheel (setup.py
    maps alembic/ there), else the top-level ``alembic/`` of the source tree (an editable
    install or a checkout). Never looked up from the working directory."""
    for candidate in (PACKAGE_ROOT / "migrations", PACKAGE_ROOT.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationsMissing(f"no Alembic migrations beside {PACKAGE_ROOT}")


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for the installed migrations; ``url`` overrides DATABASE_URL.

    Built in code, not read from alembic.ini: a wheel has no alembic.ini, and the only
    options the service needs are these (logging is left to the caller).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def upgrade(revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(), revision)


def reach_database(settings: Settings) -> None:
    """Connect to DATABASE_URL once, within what is left of the command's budget.

    Alembic's own connection waits for libpq's connect_timeout (never under 2 s): this
    check fails first, with ``DependencyUnavailable`` naming the database.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from integration_service.dependencies import POSTGRESQL, Dependencies, probe_postgresql

    engine = create_engine(
        settings.database_url,
        poolclass=NullPool,
        connect_args={"connect_timeout": max(2, int(settings.dependency_timeout))},
    )
    try:
        Dependencies.of(settings).check(
            {POSTGRESQL: lambda: probe_postgresql(engine)},
            within=remaining(settings.dependency_timeout),
        )
    finally:
        engine.dispose()


@click.command()
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
@guarded
def migrate(revision: str) -> None:
    """Apply Alembic migrations to DATABASE_URL (exit 4 if it cannot be reached)."""
    reach_database(current_settings())
    upgrade(revision)
    click.echo(f"database at {revision}")
