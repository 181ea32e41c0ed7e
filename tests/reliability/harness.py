"""A steady workload of sends and logins, and the end-of-case ledger: lost, duplicated.

The producer thread sends at a fixed rate through the producer API; every send's
idempotency key is also its text, so the emulator's delivery log can be compared with
what producers were told. A publish that raised is "refused" (the producer saw an
error); a confirmed one must be delivered exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from sqlalchemy import text

from integration_service.emulator.world.client_helper import random_phone
from tests.support.processes import wait_for
from tests.support.rabbitmq import peek_dead_letters
from tests.support.system import Provisioned, SystemUnderTest


@dataclass
class Ledger:
    accepted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    logins_ok: int = 0
    logins_failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Outcome:
    accepted: int
    refused: int
    delivered: int
    lost: int
    duplicated: int
    logins: int
    # For a failing case: outbox rows of lost sends by (status, error code).
    lost_rows: tuple[tuple[str, str | None, int], ...] = ()
    # For a failing case: where each lost send's job was last seen (worker log lines).
    trace: str = ""


class Workload:
    def __init__(
        self,
        system: SystemUnderTest,
        tenant: str,
        sessions: list[Provisioned],
        *,
        rate: float = 30.0,
        recipients: int = 60,
        logins: bool = True,
    ) -> None:
        self.system = system
        self.tenant = tenant
        self.sessions = sessions
        self.rate = rate
        self.ledger = Ledger()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._with_logins = logins
        self.recipients = []
        for i in range(recipients):
            name = f"{tenant.replace('-', '')[:10]}r{i:03d}"
            system.control.create_user(random_phone(), "R", username=name)
            self.recipients.append(f"@{name}")

    def __enter__(self) -> Workload:
        self._threads.append(threading.Thread(target=self._send_loop, daemon=True))
        if self._with_logins:
            self._threads.append(threading.Thread(target=self._login_loop, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _send_loop(self) -> None:
        client = self.system.client()
        i = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            session = self.sessions[i % len(self.sessions)]
            # Every (sender, chat) pair at most once a second: pacing never defers.
            recipient = self.recipients[(i // len(self.sessions)) % len(self.recipients)]
            key = f"{self.tenant}-m{i:05d}"
            try:
                client.send_message(
                    self.tenant, session.key.app_id, recipient, key, idempotency_key=key
                )
            except Exception as error:  # noqa: BLE001 - a refused publish is part of the ledger
                self.ledger.refused.append(key)
                self.ledger.errors[type(error).__name__] += 1
            else:
                self.ledger.accepted.append(key)
            i += 1
            next_at += 1 / self.rate
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _login_loop(self) -> None:
        client = self.system.client()
        n = 0
        while not self._stop.is_set():
            n += 1
            app_id = f"login-{n:03d}"
            phone = random_phone()
            try:
                self.system.control.create_user(phone, "L")
                started = client.wait(client.start_qr_login(self.tenant, app_id), timeout=60)
                qr = client.qr_code(self.tenant, app_id, started["ticket_id"])
                assert qr is not None, started
                token = parse_qs(urlparse(qr.url).query)["token"][0]
                self.system.control.call("POST", "/qr/approve", {"token": token, "phone": phone})
                state = client.wait_for_state(
                    self.tenant, app_id, {"authorized", "failed"}, timeout=90
                ).state
            except Exception as error:  # noqa: BLE001 - counted, the case decides
                self.ledger.errors[f"login:{type(error).__name__}"] += 1
                self.ledger.logins_failed += 1
            else:
                if state == "authorized":
                    self.ledger.logins_ok += 1
                else:
                    self.ledger.logins_failed += 1
            self._stop.wait(1.0)

    # The ledger ------------------------------------------------------------------------

    def delivered_texts(self) -> Counter[str]:
        texts: Counter[str] = Counter()
        for session in self.sessions:
            for message in self.system.control.messages(sender_id=session.user_id):
                texts[str(message["text"])] += 1
        return texts

    def settle(self, timeout: float = 180.0) -> Outcome:
        """Wait until every accepted send is delivered (or the deadline), then count."""
        accepted = set(self.ledger.accepted)

        def all_sent() -> bool:
            with self.system.engine.connect() as conn:
                sent = conn.execute(
                    text(
                        "SELECT count(*) FROM message_outbox WHERE tenant_id = :t "
                        "AND status = 'sent' AND idempotency_key = ANY(:keys)"
                    ),
                    {"t": self.tenant, "keys": list(accepted)},
                ).scalar_one()
            return bool(sent >= len(accepted))

        try:
            wait_for(all_sent, timeout=timeout, interval=0.5, what="accepted sends delivered")
        except TimeoutError:
            pass  # the counts below say what is missing
        delivered = self.delivered_texts()
        ours = {k: n for k, n in delivered.items() if k.startswith(f"{self.tenant}-m")}
        missing = sorted(accepted - set(ours))
        lost = len(missing)
        duplicated = sum(n - 1 for n in ours.values() if n > 1)
        lost_rows: tuple[tuple[str, str | None, int], ...] = ()
        trace = ""
        if missing:
            with self.system.engine.connect() as conn:
                rows = list(
                    conn.execute(
                        text(
                            "SELECT idempotency_key, status, error_code, attempts, task_id "
                            "FROM message_outbox "
                            "WHERE tenant_id = :t AND idempotency_key = ANY(:keys)"
                        ),
                        {"t": self.tenant, "keys": missing},
                    )
                )
            lost_rows = tuple((r.status, r.error_code, r.attempts) for r in rows)
            trace = self._trace({r.idempotency_key: r.task_id for r in rows}, missing)
        return Outcome(
            accepted=len(accepted),
            refused=len(self.ledger.refused),
            delivered=len(ours),
            lost=lost,
            duplicated=duplicated,
            logins=self.ledger.logins_ok,
            lost_rows=lost_rows,
            trace=trace,
        )

    def _trace(self, task_ids: dict[str, str | None], missing: list[str]) -> str:
        """Every worker log line naming a lost send's job, and the broker's non-empty queues."""
        lines = []
        logs = sorted(self.system.state_dir.glob("worker-*.log"))
        for key in missing[:5]:
            task_id = task_ids.get(key)
            lines.append(f"-- {key} task_id={task_id}")
            if task_id is None:
                continue
            for log in logs:
                for line in log.read_text(errors="replace").splitlines():
                    if task_id in line:
                        lines.append(f"{log.name}: {line[:400]}")
        lines.append("-- queues with messages: " + ", ".join(self.system.busy_queues()))
        return "\n".join(lines)

    def sessions_authorized(self) -> bool:
        return all(self.system.store.require(s.key).state == "authorized" for s in self.sessions)

    def auth_key_duplicated(self) -> int:
        return int(self.system.control.stats()["auth_key_duplicated"])

    def evidence(self, outcome: Outcome | None = None) -> str:
        """What a failing case prints: its own ledger, sessions, dead letters, queues and
        the warnings and errors of its own workers (the system is the case's alone)."""
        system = self.system
        lines = [f"== evidence of tenant {self.tenant}"]
        if outcome is not None:
            lines.append(f"outcome: {outcome}")
            if outcome.trace:
                lines.append(outcome.trace)
        lines.append(
            f"ledger: accepted={len(self.ledger.accepted)} refused={len(self.ledger.refused)} "
            f"logins ok={self.ledger.logins_ok} failed={self.ledger.logins_failed} "
            f"errors={dict(self.ledger.errors)}"
        )
        for session in self.sessions:
            row = system.store.require(session.key)
            lines.append(f"session {session.key}: {row.state} auth_error={row.auth_error}")
        try:
            stats = system.control.stats()
            lines.append(f"emulator: auth_key_duplicated={stats['auth_key_duplicated']}")
        except Exception as error:  # noqa: BLE001 - evidence is best effort
            lines.append(f"emulator stats unavailable: {error}")
        broker = system.env["CELERY_BROKER_URL"]
        for dead in peek_dead_letters(broker):
            lines.append(f"dead letter: {dead.task} {dead.task_id}: {dead.reason[:300]}")
        lines.append("queues with messages: " + ", ".join(system.busy_queues()))
        for log in sorted(system.state_dir.glob("worker-*.log")):
            noted = [
                line[:400]
                for line in log.read_text(errors="replace").splitlines()
                if '"level": "error"' in line or '"level": "warning"' in line or "Traceback" in line
            ]
            lines.append(f"-- {log.name}: {len(noted)} warning/error lines (last 30)")
            lines.extend(noted[-30:])
        return "\n".join(lines)
