"""Driving inbound traffic through the emulator and reading what the log holds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from tests.support.processes import running, wait_for
from tests.support.system import SystemUnderTest, free_port, http_get


def send_as(
    system: SystemUnderTest, sender_id: int, recipient_id: int, text_: str, **extra: Any
) -> dict[str, Any]:
    """A private message from an emulator user (no session of ours) to an account."""
    body = {"sender": sender_id, "peer": {"type": "user", "id": recipient_id}, "text": text_}
    return dict(system.control.call("POST", "/messages", {**body, **extra}))


def send_batch(system: SystemUnderTest, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One control call for many messages; the emulator's answer for each, in order."""
    answer = system.control.call("POST", "/messages", {"messages": messages})
    return list(answer["messages"])


def events(system: SystemUnderTest, tenant_id: str, type_: str | None = None) -> list[Any]:
    where = "tenant_id = :t" + (" AND type = :type" if type_ else "")
    with system.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT app_id, sequence, type, dedup_key, data, published_at "
                    f"FROM inbound_events WHERE {where} ORDER BY app_id, sequence"
                ),
                {"t": tenant_id, "type": type_},
            ).all()
        )


def count_events(system: SystemUnderTest, tenant_id: str, type_: str) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM inbound_events WHERE tenant_id = :t AND type = :type"),
                {"t": tenant_id, "type": type_},
            ).scalar_one()
        )


def started_feeds(system: SystemUnderTest, tenant_id: str) -> int:
    """How many of the tenant's sessions have a stored update state: their feeds have
    started, so what Telegram pushes from now on is in their log."""
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM inbound_state WHERE tenant_id = :t AND pts IS NOT NULL"),
                {"t": tenant_id},
            ).scalar_one()
        )


def listening_held(system: SystemUnderTest) -> dict[str, int]:
    """Worker id -> how many listening leases it holds (from Redis)."""
    held: dict[str, int] = {}
    for raw in system.redis.scan_iter(match="session_lock:*"):
        worker = system.redis.hget(raw, "worker")
        if worker is not None:
            name = worker.decode() if isinstance(worker, bytes) else str(worker)
            held[name] = held.get(name, 0) + 1
    return held


@contextmanager
def running_relay(system: SystemUnderTest, **env: str) -> Iterator[None]:
    """The relay (and its webhook dispatcher) on the system's settings plus ``env``."""
    log_path = system.state_dir / "relay.log"
    port = free_port()
    env = {**system.env, "METRICS_PORT": str(port), **env}
    args = [sys.executable, "-m", "integration_service.cli", "relay"]
    with running(args, env=env, log_path=log_path) as process:

        def ready() -> bool:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                return http_get(f"http://127.0.0.1:{port}/health/ready")[0] == 200
            except OSError:
                return False

        wait_for(ready, timeout=60, interval=0.2, what="the relay ready")
        yield
