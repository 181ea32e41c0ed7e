"""Operator commands: ``health``, ``validate``, ``migrate-sessions``, ``rotate-keys``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from integration_service.cli.audit import audited
from integration_service.cli.output import (
    CommandFailure,
    ExitCode,
    emit,
    finish,
    guarded,
    json_option,
)
from integration_service.cli.wiring import DATABASE, EVERYTHING, current_settings, open_client

if TYPE_CHECKING:
    from integration_service.maintenance import ImportReport, RotationReport
    from integration_service.observability.health import HealthReport

# What each command needs (health checks, the cipher, the importer) is imported when it
# runs: ``--help`` loads every command module.
TRANSIENT = "transient"


def _health_text(report: HealthReport) -> str:
    lines = [f"{'COMPONENT':<10}  {'RESULT':<6}  {'LATENCY':>10}  DETAIL"]
    for check in report.checks:
        result = "ok" if check.ok else "FAIL"
        lines.append(f"{check.name:<10}  {result:<6}  {check.latency_ms:>8.1f}ms  {check.detail}")
    lines.append("ready" if report.ok else "NOT READY")
    return "\n".join(lines)


@click.command("health")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=60),
    default=2.0,
    show_default=True,
    help="Seconds each check may take (they run in parallel).",
)
@json_option
@guarded
def health(timeout: float, as_json: bool) -> None:
    """Check the broker, Redis, PostgreSQL (and Vault when used); exit 4 if any fails."""
    from integration_service.observability.health import run_checks

    report = run_checks(current_settings(), timeout=timeout)
    emit(report.to_dict(), lambda: _health_text(report))
    finish(ExitCode.OK if report.ok else ExitCode.DEPENDENCY_DOWN)


@click.command("validate")
@click.argument("tenant_id")
@click.argument("app_id")
@click.option("--wait/--no-wait", default=False, show_default=True, help="Wait for the verdict.")
@click.option("--timeout", type=click.FloatRange(min=1, max=3600), default=60.0, show_default=True)
@json_option
@audited("validate")
@guarded
def validate(tenant_id: str, app_id: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Ask Telegram whether a session still works (updates.GetState) and classify it.

    With --wait: exit 0 when authorized, 4 when Telegram could not be reached
    (transient), 1 for revoked, expired, banned, deactivated or duplicated.
    """
    from integration_service.sessions import state_machine as sm

    with open_client(needs=EVERYTHING) as client:
        handle = client.validate_session(tenant_id, app_id)
        if not wait:
            emit(
                {"tenant_id": handle.tenant_id, "app_id": handle.app_id, "job_id": handle.job_id},
                f"queued validation job {handle.job_id}",
            )
            return
        result: dict[str, Any] = client.wait(handle, timeout=timeout)
    document = {**result, "job_id": handle.job_id}
    detail = f" ({result['detail']})" if result.get("detail") else ""
    emit(document, f"{tenant_id}/{app_id}: {result.get('outcome')}{detail}")
    outcome = result.get("outcome")
    verdicts = {sm.AUTHORIZED: ExitCode.OK, TRANSIENT: ExitCode.DEPENDENCY_DOWN}
    finish(verdicts.get(str(outcome), ExitCode.FAILED))


def _import_text(report: ImportReport) -> str:
    heading = "dry run: nothing written" if report.dry_run else "imported"
    lines = [f"{heading}; tenant {report.tenant_id}, source {report.source_dir}"]
    if not report.tenant_existed:
        lines.append(
            "tenant was not registered"
            + ("; a real run registers it" if report.dry_run else "; registered now")
        )
    for item in report.files:
        line = f"  {item.file_name:<32} {item.outcome.value:<22} {item.app_id or '-'}"
        if item.reason:
            line += f"  {item.reason}"
        lines.append(line)
        lines.extend(f"    warning: {warning}" for warning in item.warnings)
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    counts = ", ".join(f"{name}={count}" for name, count in sorted(report.counts().items()))
    lines.append(f"files: {len(report.files)}" + (f" ({counts})" if counts else ""))
    if report.report_path:
        lines.append(f"report: {report.report_path}")
    return "\n".join(lines)


@click.command("migrate-sessions")
@click.option("--tenant", "tenant_id", required=True, help="Tenant whose files to import.")
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of <app_id>.session files [default: SESSIONS_BASE_PATH/<tenant>].",
)
@click.option("--dry-run", is_flag=True, help="Read and report only; write nothing anywhere.")
@click.option("--kind", type=click.Choice(["user", "bot"]), default="user", show_default=True)
@json_option
@guarded
def migrate_sessions(
    tenant_id: str, source: Path | None, dry_run: bool, kind: str, as_json: bool
) -> None:
    """Import legacy Telethon .session files (never modified) as encrypted sessions.

    Exit 1 when any file failed to import; invalid files and auth keys already stored
    elsewhere are reported and skipped.
    """
    from integration_service import inputs
    from integration_service.crypto import build_cipher
    from integration_service.maintenance import ImportOutcome, import_sessions, legacy_source_dir

    tenant = inputs.identifier("tenant_id", tenant_id)
    settings = current_settings()
    directory = source if source is not None else legacy_source_dir(settings, tenant)
    if not directory.is_dir():
        raise CommandFailure(
            ExitCode.NOT_FOUND,
            f"legacy session directory {directory} does not exist",
            error="not_found",
        )
    with open_client(settings, needs=DATABASE) as client:
        report = import_sessions(
            directory,
            store=client.store,
            engine=client.engine,
            cipher=build_cipher(settings),
            settings=settings,
            tenant_id=tenant,
            dry_run=dry_run,
            kind="bot" if kind == "bot" else "user",
        )
    emit(report.to_dict(), lambda: _import_text(report))
    failed = any(item.outcome == ImportOutcome.FAILED for item in report.files)
    finish(ExitCode.FAILED if failed else ExitCode.OK)


def _rotation_text(report: RotationReport) -> str:
    lines = [
        f"key {report.key_id}" + (" (created by this run)" if report.rotated_key else ""),
        f"examined {report.examined}, rewrapped {report.rewrapped}, "
        f"skipped (changed concurrently) {report.skipped_concurrent_change}, "
        f"failed {report.failed}, batches {report.batches}",
    ]
    lines.extend(f"  failed: {item.key} ({item.reason})" for item in report.failures)
    return "\n".join(lines)


@click.command("rotate-keys")
@click.option(
    "--no-new-key",
    is_flag=True,
    help="Re-wrap under the current key instead of creating a new key version first.",
)
@click.option("--batch-size", type=click.IntRange(1, 10000), default=500, show_default=True)
@json_option
@guarded
def rotate_keys(no_new_key: bool, batch_size: int, as_json: bool) -> None:
    """Create a new key version and re-wrap every stored session string under it, now.

    Runs in this process, online (sessions keep working). The queued way, run by a
    worker, is the job `tasks.maintenance.rotate_keys`. A LOCAL_KEYRING keyring rotates
    by appending a key to the variable: then use --no-new-key. Exit 1 if any row failed.
    """
    from integration_service.crypto import build_cipher
    from integration_service.maintenance import rotate_session_keys

    settings = current_settings()
    cipher = build_cipher(settings)
    with open_client(settings, needs=DATABASE) as client:
        report = rotate_session_keys(
            client.engine, cipher, batch_size=batch_size, rotate_key=not no_new_key
        )
    document = asdict(report)
    document["failures"] = [
        {"session": str(item.key), "reason": item.reason} for item in report.failures
    ]
    emit(document, lambda: _rotation_text(report))
    finish(ExitCode.FAILED if report.failed else ExitCode.OK)
