"""Authorisation jobs (queue ``high``): QR, phone code, 2FA password, bot token.

Secrets (code, password, bot token) arrive as one-time references into Redis, never as
job arguments (see integration_service.secret_drop).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from integration_service import inputs
from integration_service.celery_app import app
from integration_service.jobs.session_task import SessionTask
from integration_service.secret_drop import secret_for_job
from integration_service.sessions import code_login, qr_login
from integration_service.sessions.tickets import LoginTickets
from integration_service.store import SessionKey


class ConnectTask(SessionTask):
    abstract = True
    default_job_class = "high"
    # A login step is interactive: retrying it minutes later helps nobody.
    max_retries = 3

    def key(self, tenant_id: str, app_id: str) -> SessionKey:
        return SessionKey(
            inputs.identifier("tenant_id", tenant_id), inputs.identifier("app_id", app_id)
        )

    def tickets(self) -> LoginTickets:
        return LoginTickets(self.runtime.redis, self.runtime.settings.qr_ticket_ttl)


@app.task(name="tasks.connect.start_qr_login", base=ConnectTask, bind=True)
def start_qr_login(self: ConnectTask, *, tenant_id: str, app_id: str) -> dict[str, Any]:
    key = self.key(tenant_id, app_id)
    return asdict(
        qr_login.start_qr_login(self.runtime, self.tickets(), key, task_id=self.request.id)
    )


@app.task(name="tasks.connect.request_code", base=ConnectTask, bind=True)
def request_code(self: ConnectTask, *, tenant_id: str, app_id: str, phone: str) -> dict[str, Any]:
    key = self.key(tenant_id, app_id)
    result = code_login.request_code(
        self.runtime, self.tickets(), key, inputs.phone(phone), task_id=self.request.id
    )
    return asdict(result)


@app.task(name="tasks.connect.submit_code", base=ConnectTask, bind=True)
def submit_code(self: ConnectTask, *, tenant_id: str, app_id: str, code_ref: str) -> dict[str, Any]:
    key = self.key(tenant_id, app_id)
    with secret_for_job(self.runtime.redis, code_ref) as secret:
        result = code_login.submit_code(
            self.runtime, self.tickets(), key, inputs.login_code(secret), task_id=self.request.id
        )
    return asdict(result)


@app.task(name="tasks.connect.submit_password", base=ConnectTask, bind=True)
def submit_password(
    self: ConnectTask, *, tenant_id: str, app_id: str, password_ref: str
) -> dict[str, Any]:
    key = self.key(tenant_id, app_id)
    with secret_for_job(self.runtime.redis, password_ref) as secret:
        result = code_login.submit_password(
            self.runtime, self.tickets(), key, inputs.password(secret), task_id=self.request.id
        )
    return asdict(result)


@app.task(name="tasks.connect.connect_bot", base=ConnectTask, bind=True)
def connect_bot(
    self: ConnectTask, *, tenant_id: str, app_id: str, token_ref: str
) -> dict[str, Any]:
    key = self.key(tenant_id, app_id)
    with secret_for_job(self.runtime.redis, token_ref) as secret:
        result = code_login.connect_bot(
            self.runtime, self.tickets(), key, inputs.bot_token(secret), task_id=self.request.id
        )
    return asdict(result)
