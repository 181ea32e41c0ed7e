"""``integration-service migrate``: bring the database to the newest schema."""

from __future__ import annotations

from pathlib import Path

import click
from alembic.config import Config

from alembic import command

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for this source tree; ``url`` overrides DATABASE_URL."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    if url is not None:
        config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def upgrade(revision: str) -> None:
    command.upgrade(alembic_config(), revision)


@click.command()
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def migrate(revision: str) -> None:
    """Apply Alembic migrations to DATABASE_URL."""
    upgrade(revision)
    click.echo(f"database at {revision}")
