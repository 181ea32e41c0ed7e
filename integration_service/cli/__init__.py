"""The operator CLI, ``integration-service``: one click group, one module per area.

Exit codes (integration_service.cli.output.ExitCode): 0 ok, 1 the operation failed,
2 bad arguments or input, 3 unknown tenant or session, 4 a dependency is down,
5 timed out waiting.
"""

from __future__ import annotations

import click

from integration_service.cli import budget
from integration_service.cli.api import api, api_key
from integration_service.cli.channels import channels
from integration_service.cli.credentials import bot_login, code_login, password
from integration_service.cli.database import migrate
from integration_service.cli.emulator import emulator
from integration_service.cli.events import events
from integration_service.cli.login import finalize, qr_login
from integration_service.cli.messages import send
from integration_service.cli.ops import health, migrate_sessions, rotate_keys, validate
from integration_service.cli.relay import relay
from integration_service.cli.run import run
from integration_service.cli.sessions import list_sessions, listen, status, tenant
from integration_service.cli.webhooks import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="integration-service")
@click.pass_context
def main(context: click.Context) -> None:
    """Connect and operate Telegram accounts for many tenants.

    Configuration comes from the environment (DATABASE_URL, CELERY_BROKER_URL,
    REDIS_URL, ...). Exit codes: 0 ok, 1 operation failed, 2 bad arguments or input,
    3 unknown tenant or session, 4 a dependency is down (within DEPENDENCY_TIMEOUT),
    5 timed out waiting.
    """
    budget.start(context)


for command in (
    health,
    list_sessions,
    status,
    listen,
    tenant,
    qr_login,
    code_login,
    password,
    bot_login,
    finalize,
    send,
    validate,
    migrate_sessions,
    rotate_keys,
    emulator,
    migrate,
    run,
    relay,
    events,
    webhooks,
    channels,
    api,
    api_key,
):
    main.add_command(command)

__all__ = ["main"]
