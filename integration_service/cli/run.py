"""``integration-service run``: the whole local system, supervised by honcho."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from integration_service.cli.output import guarded


@click.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".state"),
    show_default=True,
    envvar="STATE_DIR",
)
@click.option(
    "--emulator-port",
    type=click.IntRange(1, 65535),
    default=8443,
    show_default=True,
    envvar="EMULATOR_PORT",
)
@click.option(
    "--flower-port",
    type=click.IntRange(1, 65535),
    default=5555,
    show_default=True,
    envvar="FLOWER_PORT",
)
@click.option(
    "--api-port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    envvar="API_PORT",
)
@click.option(
    "--metrics-base-port",
    type=click.IntRange(1, 65000),
    default=9100,
    show_default=True,
    envvar="METRICS_BASE_PORT",
    help="Workers, beat and the relay expose /metrics and /health on base+1 .. +4.",
)
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Apply Alembic migrations first.",
)
@guarded
def run(
    state_dir: Path,
    emulator_port: int,
    flower_port: int,
    api_port: int,
    metrics_base_port: int,
    concurrency: int,
    migrate: bool,
) -> None:
    """Start the emulator (unless TELEGRAM_API_ID/HASH are set), workers, beat, the relay,
    the HTTP API and Flower.

    A bad setting (exit 2), or PostgreSQL, Redis or the broker out of reach within
    DEPENDENCY_TIMEOUT (exit 4), ends it before anything starts, with one line, as for
    the other commands.
    """
    from integration_service.cli.wiring import EVERYTHING, open_client
    from integration_service.devserver import supervisor
    from integration_service.devserver.processes import Ports, plan
    from integration_service.settings import get_settings

    settings = get_settings()
    # Every process needs all three: better one line now than five processes failing
    # their start-up, or the readiness wait giving up after two minutes.
    with open_client(settings, needs=EVERYTHING):
        pass
    if migrate:
        from integration_service.cli.database import upgrade

        upgrade("head")
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ports = Ports(
        emulator=emulator_port, flower=flower_port, metrics_base=metrics_base_port, api=api_port
    )
    processes = plan(settings, state_dir, ports, concurrency=concurrency)
    emulator_json = (
        None if settings.uses_real_telegram else state_dir / "emulator" / "emulator.json"
    )
    if emulator_json is not None:
        emulator_json.unlink(missing_ok=True)  # readiness waits for the new one
    code = supervisor.run(
        processes,
        ports,
        emulator_json=emulator_json,
        env=dict(os.environ),
        announce=_announce,
    )
    sys.exit(code)


def _announce(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
