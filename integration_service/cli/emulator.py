"""``integration-service emulator``: the local Telegram data centre."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port for MTProto; 0 picks a free one (written to emulator.json).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".state/emulator"),
    show_default=True,
    help=(
        "Directory for emulator.json (host, port, dc_id, RSA public key, control URL) and "
        "the world's database (world.sqlite3: users, keys, messages; kept across restarts)."
    ),
)
@click.option("--dc-id", type=click.IntRange(1, 5), default=2, show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
def emulator(host: str, port: int, state_dir: Path, dc_id: int, log_level: str) -> None:
    """Run the Telegram emulator until SIGTERM or Ctrl-C."""
    from integration_service.emulator.runner import run
    from integration_service.observability.logging import configure_logging

    # One JSON object per line, scrubbed, like every other process of the system.
    configure_logging(log_level)
    run(host=host, port=port, state_dir=state_dir, dc_id=dc_id)
