"""The operator CLI, ``integration-service``: one click group, one module per area."""

from __future__ import annotations

import click

from integration_service.cli.database import migrate
from integration_service.cli.emulator import emulator
from integration_service.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="integration-service")
def main() -> None:
    """Connect and operate Telegram accounts for many tenants."""


main.add_command(emulator)
main.add_command(migrate)
main.add_command(run)

__all__ = ["main"]
