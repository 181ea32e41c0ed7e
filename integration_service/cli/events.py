"""``events replay|tail``: read a tenant's event log by cursor, or follow it.

Both print each event as one JSON line (the envelope of docs/EVENTS.md) on stdout, so
the output pipes into ``jq`` or a file as is. ``replay`` prints one page and then the
cursor that continues it (on stderr, or inside the one document with ``--json``);
``tail`` polls for new events until Ctrl-C, which ends it with exit 0.
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import click

from integration_service.cli.output import emit, guarded, json_option
from integration_service.cli.wiring import DATABASE, open_client

# Events per poll of ``tail``: a full page is followed by the next at once.
PAGE = 1000
EVENT_TYPE_HELP = (
    "Only this event type (repeatable): message.received, message.edited, message.deleted, "
    "message.sent, message.failed, session.state_changed, gap."
)


def _line(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope, sort_keys=True, default=str)


@click.group("events")
def events() -> None:
    """Replay or follow a tenant's events (the log the relay and webhooks deliver)."""


@events.command("replay")
@click.argument("tenant_id")
@click.option("--app", "app_id", help="Only this session's events.")
@click.option(
    "--after",
    "cursor",
    help="Start after this event id, or (with --app) this sequence number.",
)
@click.option("--type", "types", multiple=True, help=EVENT_TYPE_HELP)
@click.option(
    "--limit",
    type=int,
    default=100,
    show_default=True,
    help="Events per page (1-1000).",
)
@json_option
@guarded
def replay(
    tenant_id: str,
    app_id: str | None,
    cursor: str | None,
    types: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Print one page of TENANT_ID's events after a cursor, then the next cursor."""
    with open_client(needs=DATABASE) as client:
        page = client.events(
            tenant_id, app_id=app_id, after=cursor, types=types or None, limit=limit
        )
    next_cursor = _cursor_after(page[-1], cursor, app_id) if page else cursor
    if as_json:
        emit({"events": page, "next_cursor": next_cursor, "count": len(page)}, "")
        return
    for envelope in page:
        click.echo(_line(envelope))
    if next_cursor is not None:
        click.echo(f"next cursor: {next_cursor} (--after {next_cursor})", err=True)
    else:
        click.echo("no events yet", err=True)


def _cursor_after(last: dict[str, Any], cursor: str | None, app_id: str | None) -> str:
    """The cursor after ``last``, of the kind given: a sequence stays a sequence."""
    if app_id is not None and cursor is not None and cursor.isdigit():
        return str(last["sequence"])
    return str(last["id"])


@events.command("tail")
@click.argument("tenant_id")
@click.option("--app", "app_id", help="Only this session's events.")
@click.option("--type", "types", multiple=True, help=EVENT_TYPE_HELP)
@click.option(
    "--after",
    "cursor",
    help="Print from after this event id (or, with --app, sequence); default: new events only.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05, max=60),
    default=1.0,
    show_default=True,
    help="Seconds between polls when nothing new came.",
)
@json_option
@guarded
def tail(
    tenant_id: str,
    app_id: str | None,
    types: tuple[str, ...],
    cursor: str | None,
    interval: float,
    as_json: bool,
) -> None:
    """Follow TENANT_ID's events: one JSON line per new event, until Ctrl-C.

    Events are JSON lines either way; --json makes a failure's line JSON too.
    """
    chosen = types or None
    with open_client(needs=DATABASE) as client:
        # Validates every input (exit 2, or 3 for an unknown tenant) before following.
        client.events(tenant_id, app_id=app_id, after=cursor, types=chosen, limit=1)
        position = (
            cursor if cursor is not None else client.latest_event_id(tenant_id, app_id=app_id)
        )
        stop = threading.Event()
        # Ctrl-C or SIGTERM ends a follow (exit 0). Installed explicitly: a process started
        # in the background by a non-interactive shell inherits SIGINT ignored, and Python
        # then never raises KeyboardInterrupt.
        previous = {
            signum: signal.signal(signum, lambda _signum, _frame: stop.set())
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not stop.is_set():
                page = client.events(
                    tenant_id, app_id=app_id, after=position, types=chosen, limit=PAGE
                )
                for envelope in page:
                    click.echo(_line(envelope))
                if page:
                    position = _cursor_after(page[-1], position, app_id)
                if len(page) < PAGE:
                    stop.wait(interval)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
