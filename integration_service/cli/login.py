"""``qr-login`` and ``finalize``: start a QR login, and wait for a login to end."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from integration_service.cli.audit import audited
from integration_service.cli.login_output import report_step, step_document, step_text
from integration_service.cli.output import (
    ExitCode,
    emit,
    finish,
    guarded,
    json_option,
    json_requested,
)
from integration_service.cli.sessions import status_document, status_text
from integration_service.cli.wiring import DATABASE_AND_REDIS, EVERYTHING, open_client

if TYPE_CHECKING:
    from integration_service.client import IntegrationClient, SessionStatus

# The state machine, the store and the QR drawing are imported by the commands that use
# them, not here: ``--help`` loads every command module.
POLL_SLICE = 1.0  # how often qr-login --wait looks for a recreated QR token


def write_png(path: Path, png_base64: str) -> None:
    """Write the QR image readable by its owner only (it logs in whoever scans it)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # An existing file keeps its old mode through O_CREAT: narrow it explicitly.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(base64.b64decode(png_base64))


def _show_qr(url: str, png: Path | None, png_base64: str | None = None) -> None:
    from integration_service.sessions.qr_image import qr_png_base64, qr_terminal

    if png is not None:
        write_png(png, png_base64 or qr_png_base64(url))
    if not json_requested():
        click.echo(qr_terminal(url))
        click.echo(f"QR URL: {url}")
        if png is not None:
            click.echo(f"QR PNG written to {png}")


def _wait_for_scan(
    client: IntegrationClient,
    tenant_id: str,
    app_id: str,
    *,
    url: str,
    png: Path | None,
    timeout: float,
) -> SessionStatus:
    """Wait for the QR login to settle, showing the QR again whenever it is recreated."""
    from integration_service.sessions import state_machine as sm

    # Where a QR login stops needing the scanner: signed in, or on to the 2FA password.
    settled = frozenset({sm.AUTHORIZED, sm.PASSWORD_REQUIRED, sm.FAILED})
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            return client.wait_for_state(
                tenant_id, app_id, settled, timeout=max(0.0, min(POLL_SLICE, remaining))
            )
        except TimeoutError:
            if remaining <= POLL_SLICE:
                raise
        qr = client.qr_code(tenant_id, app_id)
        current = qr.url if qr is not None else None
        if current and current != url:
            url = current
            if not json_requested():
                click.echo("QR token recreated; scan this one:")
            _show_qr(url, png)


@click.command("qr-login")
@click.argument("tenant_id")
@click.argument("app_id")
@click.option(
    "--png",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the QR code as a PNG file (mode 0600).",
)
@click.option(
    "--wait/--no-wait",
    default=False,
    show_default=True,
    help="Wait until the QR is scanned: authorized, password_required or failed.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1, max=86400),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the QR (and, with --wait, for the scan).",
)
@json_option
@audited("qr-login")
@guarded
def qr_login(
    tenant_id: str, app_id: str, png: Path | None, wait: bool, timeout: float, as_json: bool
) -> None:
    """Start a QR login and show the QR code to scan in Telegram (Settings > Devices)."""
    from integration_service.sessions import state_machine as sm

    with open_client(needs=EVERYTHING) as client:
        handle = client.start_qr_login(tenant_id, app_id)
        result: dict[str, Any] = client.wait(handle, timeout=timeout)
        # The job's result names the login ticket; the QR itself is read from it.
        qr = None
        if result.get("state") == sm.QR_PENDING:
            qr = client.qr_code(tenant_id, app_id, result.get("ticket_id"))
        if qr is None:
            report_step(result, handle.job_id)
            return
        url = qr.url
        _show_qr(url, png)
        document = {**step_document(result, handle.job_id), "qr_url": url}
        if png is not None:
            document["png"] = str(png)
        if not wait:
            emit(document, f"{tenant_id}/{app_id}: {sm.QR_PENDING} (job {handle.job_id})")
            return
        final = _wait_for_scan(client, tenant_id, app_id, url=url, png=png, timeout=timeout)
    document.update(state=final.state, error=final.login.get("error") or None)
    emit(document, lambda: step_text(document))
    finish(ExitCode.FAILED if final.state == sm.FAILED else ExitCode.OK)


@click.command("finalize")
@click.argument("tenant_id")
@click.argument("app_id")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, max=86400),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the login to end.",
)
@json_option
@audited("finalize")
@guarded
def finalize(tenant_id: str, app_id: str, timeout: float, as_json: bool) -> None:
    """Wait until the login in progress ends; print the final state.

    Exit 0 when authorized, 1 when it ended any other way (failed, revoked, ...),
    5 when it is still in progress after --timeout (a login waiting for its 2FA password
    stays in progress until `integration-service password` is run).
    """
    from integration_service.client import WaitTimedOut
    from integration_service.sessions import state_machine as sm
    from integration_service.store import SessionNotFound

    # A login is in progress in these states; finalize waits until the session leaves them.
    in_progress = frozenset({sm.NEW, sm.QR_PENDING, sm.CODE_SENT, sm.PASSWORD_REQUIRED})
    with open_client(needs=DATABASE_AND_REDIS) as client:
        current = client.get_status(tenant_id, app_id)
        if current.state is None and not current.login:
            raise SessionNotFound(f"no session {current.tenant_id}/{current.app_id}")
        try:
            final = client.wait_for_state(
                tenant_id, app_id, sm.STATES - in_progress, timeout=timeout
            )
        except WaitTimedOut:
            state = client.get_status(tenant_id, app_id).state
            raise WaitTimedOut(
                f"login of {tenant_id}/{app_id} is still {state} after {timeout:g}s"
            ) from None
    document = status_document(final)
    emit(document, lambda: status_text(document))
    finish(ExitCode.OK if final.state == sm.AUTHORIZED else ExitCode.FAILED)
