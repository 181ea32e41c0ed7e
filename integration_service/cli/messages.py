"""``send``: one text message through the exactly-once send job."""

from __future__ import annotations

from typing import Any

import click

from integration_service.cli.audit import audited
from integration_service.cli.output import ExitCode, emit, finish, guarded, json_option
from integration_service.cli.wiring import EVERYTHING, open_client

SENT = "sent"


def _sent_text(document: dict[str, Any]) -> str:
    line = f"{document['tenant_id']}/{document['app_id']}: {document['status']}"
    if document.get("telegram_message_id") is not None:
        line += f" (message id {document['telegram_message_id']})"
    if document.get("error_code"):
        line += f" (error: {document['error_code']})"
    if document.get("repeated"):
        line += " (already sent earlier with this idempotency key; not sent again)"
    return line


@click.command("send")
@click.argument("tenant_id")
@click.argument("app_id")
@click.option("--peer", required=True, help="Recipient: @username or a numeric (marked) id.")
@click.option("--text", "body", required=True, help="Message text (up to 4096 characters).")
@click.option(
    "--idempotency-key",
    help="Sending again with the same key never sends twice (default: a fresh key).",
)
@click.option("--wait/--no-wait", default=False, show_default=True, help="Wait for the outcome.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1, max=3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait with --wait.",
)
@json_option
@audited("send")
@guarded
def send(
    tenant_id: str,
    app_id: str,
    peer: str,
    body: str,
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Send a text message from a connected account or bot."""
    with open_client(needs=EVERYTHING) as client:
        handle = client.send_message(tenant_id, app_id, peer, body, idempotency_key=idempotency_key)
        queued = {
            "tenant_id": handle.tenant_id,
            "app_id": handle.app_id,
            "job_id": handle.job_id,
            "idempotency_key": handle.idempotency_key,
        }
        if not wait:
            emit(
                {**queued, "status": "queued"},
                f"queued job {handle.job_id} (idempotency key {handle.idempotency_key})",
            )
            return
        outcome: dict[str, Any] = client.wait(handle, timeout=timeout)
    document = {**queued, **outcome}
    emit(document, lambda: _sent_text(document))
    finish(ExitCode.OK if outcome.get("status") == SENT else ExitCode.FAILED)
