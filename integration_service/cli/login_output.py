"""How a login step's result is shown and which exit code it earns.

Shared by the QR and the credential commands. A step succeeded when the session moved
forward (``authorized``, or on to the next step: ``code_sent``, ``password_required``,
``qr_pending``); a step that left an error (a wrong code, a wrong password, a refused
token) or a ``failed`` session failed.
"""

from __future__ import annotations

from typing import Any

from integration_service.cli.output import ExitCode, emit, finish

FORWARD_STATES = frozenset({"authorized", "code_sent", "password_required", "qr_pending"})
# Shown instead of the PNG in --json output: the base64 image is long and the QR URL is
# its whole content.
HIDDEN_RESULT_FIELDS = frozenset({"qr_png_base64"})

NEXT_STEP = {
    "code_sent": "next: integration-service code-login {t} {a} --code   (or --code - < file)",
    "password_required": "next: integration-service password {t} {a}   (2FA password)",
}


def step_code(result: dict[str, Any]) -> ExitCode:
    if result.get("error") or result.get("state") not in FORWARD_STATES:
        return ExitCode.FAILED
    return ExitCode.OK


def step_document(result: dict[str, Any], job_id: str) -> dict[str, Any]:
    shown = {k: v for k, v in result.items() if k not in HIDDEN_RESULT_FIELDS}
    return {**shown, "job_id": job_id}


def step_text(document: dict[str, Any]) -> str:
    tenant_id, app_id = document.get("tenant_id"), document.get("app_id")
    line = f"{tenant_id}/{app_id}: {document.get('state')}"
    if document.get("error"):
        line += f" (error: {document['error']})"
    hint = NEXT_STEP.get(str(document.get("state")))
    if hint and not document.get("error"):
        line += "\n" + hint.format(t=tenant_id, a=app_id)
    return line


def report_step(result: dict[str, Any], job_id: str) -> None:
    """Print a login step's result and end with its exit code."""
    document = step_document(result, job_id)
    emit(document, lambda: step_text(document))
    finish(step_code(result))
