"""Logins started through the API: which session and job each is, kept in Redis for as
long as a login can live (QR_TICKET_TTL), under a key that holds the tenant, so one
tenant's login id finds nothing for another. Where a login stands is read from its
session's login ticket (``sessions/tickets.py``), the session row and the job's result.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from integration_service.api.errors import ResourceNotFound
from integration_service.api.models import Login, QrCodeOut
from integration_service.client import IntegrationClient, JobHandle
from integration_service.errors import ServiceError
from integration_service.store import SessionKey

# Ticket statuses as the API names them; anything else (a bot's "connecting") is starting.
TICKET_STATES = {"qr_pending", "code_sent", "password_required", "authorized", "failed"}


@dataclass(frozen=True, slots=True)
class LoginRecord:
    id: str
    tenant_id: str
    app_id: str
    method: str
    job_id: str
    created_at: float


def _key(tenant_id: str, login_id: str) -> str:
    return f"api_login:{tenant_id}:{login_id}"


class Logins:
    def __init__(self, client: IntegrationClient) -> None:
        self._client = client

    def record(self, method: str, handle: JobHandle) -> LoginRecord:
        record = LoginRecord(
            id=secrets.token_urlsafe(12),
            tenant_id=handle.tenant_id,
            app_id=handle.app_id,
            method=method,
            job_id=handle.job_id,
            created_at=time.time(),
        )
        value = json.dumps(
            {
                "app_id": record.app_id,
                "method": method,
                "job_id": record.job_id,
                "created_at": record.created_at,
            }
        )
        self._client.redis.set(
            _key(record.tenant_id, record.id), value, ex=self._client.settings.qr_ticket_ttl
        )
        return record

    def find(self, tenant_id: str, login_id: str) -> LoginRecord:
        raw = self._client.redis.get(_key(tenant_id, login_id)) if len(login_id) < 64 else None
        if raw is None:
            raise ResourceNotFound(f"no login {login_id} (unknown, or over QR_TICKET_TTL old)")
        stored: dict[str, Any] = json.loads(raw)
        return LoginRecord(
            id=login_id,
            tenant_id=tenant_id,
            app_id=str(stored["app_id"]),
            method=str(stored["method"]),
            job_id=str(stored["job_id"]),
            created_at=float(stored["created_at"]),
        )

    def state(self, record: LoginRecord) -> Login:
        client = self._client
        failure = self._job_failure(record.job_id)
        ticket = client.tickets.get(SessionKey(record.tenant_id, record.app_id))
        status = ticket.get("status")
        # A newer login of the same session replaced the ticket: this one is over.
        started_after = float(ticket.get("started_at", 0) or 0) >= record.created_at - 5
        login = Login(
            id=record.id,
            account_id=record.app_id,
            method=record.method,  # type: ignore[arg-type]
            state="starting",
            created_at=record.created_at,
        )
        if failure is not None:
            return login.model_copy(update={"state": "failed", "reason": failure})
        if status in TICKET_STATES and started_after:
            login = login.model_copy(update={"state": status})
            if status == "failed":
                login = login.model_copy(update={"reason": ticket.get("error") or None})
            if status == "qr_pending":
                qr = client.qr_code(record.tenant_id, record.app_id, ticket.get("ticket_id"))
                if qr is not None:
                    shown = QrCodeOut(
                        url=qr.url, png_base64=qr.png_base64(), expires_at=qr.expires_at
                    )
                    login = login.model_copy(update={"qr": shown})
        return login

    def _job_failure(self, job_id: str) -> str | None:
        from celery.result import AsyncResult

        from integration_service.jobs.results import results_backend

        app = self._client.app
        result: AsyncResult[Any] = AsyncResult(job_id, app=app, backend=results_backend(app))
        if result.state != "FAILURE":
            return None
        error = result.result
        if isinstance(error, ServiceError):
            return f"{error.code}: {error.detail}"
        return type(error).__name__
