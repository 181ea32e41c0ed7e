"""``integration-service relay``: the event log to RabbitMQ (and to webhooks), as a process.

Runs the ``EventRelay`` and the ``WebhookDispatcher`` (unless ``--no-webhooks``) until
SIGTERM or SIGINT, logs JSON lines like every process of the system, and
serves /metrics and /health on METRICS_PORT as workers do. Several relays may run at
once: each round locks its rows with SKIP LOCKED, so no row is published by two.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import click

from integration_service.cli.output import guarded

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from integration_service.inbound.relay import EventRelay
    from integration_service.observability.health import HealthReport
    from integration_service.settings import Settings
    from integration_service.webhooks import WebhookDispatcher

# A relay whose loop has not finished a round for this long is stuck (a round is bounded
# by the confirm timeout and the backoff, both far below this).
STALLED_AFTER_SECONDS = 120.0
# What readiness checks: the relay needs the broker and PostgreSQL (Vault only for the
# webhook secrets), not Redis.
READINESS_CHECKS = frozenset({"broker", "postgres", "vault"})


def webhook_dispatcher(settings: Settings, engine: Engine) -> WebhookDispatcher:
    """The webhook dispatcher on the relay's engine, with the session cipher (the
    subscriptions' secrets are encrypted by it)."""
    from integration_service.crypto import build_cipher
    from integration_service.webhooks import WebhookDispatcher

    return WebhookDispatcher(settings, engine, build_cipher(settings))


def relay_health(
    relay: EventRelay, dispatcher: WebhookDispatcher | None, report: HealthReport
) -> HealthReport:
    """``report`` plus whether the relay's loop is turning and the dispatcher runs."""
    from integration_service.observability.health import CheckResult, HealthReport

    idle = time.monotonic() - relay.last_round_at
    ok = relay.running and idle < STALLED_AFTER_SECONDS
    detail = f"last round {idle:.1f}s ago" if relay.running else "relay thread not running"
    checks = [*report.checks, CheckResult("relay", ok, 0.0, detail)]
    if dispatcher is not None:
        alive = dispatcher.is_alive()
        detail = "running" if alive else "dispatcher thread not running"
        checks.append(CheckResult("webhooks", alive, 0.0, detail))
    return HealthReport(tuple(checks))


@click.command("relay")
@click.option(
    "--webhooks/--no-webhooks",
    default=True,
    show_default=True,
    help="Also deliver webhooks (the webhook dispatcher) in this process.",
)
@guarded
def relay(webhooks: bool) -> None:
    """Publish the event log to the `events` exchange until SIGTERM or Ctrl-C.

    Rows are published with publisher confirms and marked after the confirm: a crash
    publishes a row again (same message id), never skips one. Run several for
    availability. Serves /metrics and /health on METRICS_PORT (0: none).
    """
    import structlog

    from integration_service.inbound.relay import EventRelay
    from integration_service.observability.health import HealthReport, run_checks, run_liveness
    from integration_service.observability.http_server import ObservabilityServer
    from integration_service.observability.logging import configure_logging
    from integration_service.settings import get_settings
    from integration_service.store import build_engine
    from integration_service.tracing import configure_tracing, shutdown_tracing

    settings = get_settings()
    configure_logging(settings.log_level)
    configure_tracing(settings, "relay")
    logger = structlog.get_logger("integration_service.relay")
    engine = build_engine(settings)
    event_relay = EventRelay(settings, engine)
    dispatcher = webhook_dispatcher(settings, engine) if webhooks else None

    class RelayObservability(ObservabilityServer):
        def liveness(self) -> HealthReport:
            report = run_liveness(timeout=self.check_timeout)
            return relay_health(event_relay, dispatcher, report)

        def readiness(self) -> HealthReport:
            checks = run_checks(self.settings, timeout=self.check_timeout).checks
            needed = HealthReport(tuple(c for c in checks if c.name in READINESS_CHECKS))
            return relay_health(event_relay, dispatcher, needed)

    stopping = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("relay_shutting_down", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    servers = [
        RelayObservability(settings, host=settings.metrics_host, port=port).start()
        for port in sorted({p for p in (settings.metrics_port, settings.health_port) if p})
    ]
    try:
        event_relay.start()
        if dispatcher is not None:
            dispatcher.start()
        logger.info("relay_ready", webhooks=dispatcher is not None)
        while not stopping.wait(1.0):
            pass
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        event_relay.stop()
        for server in servers:
            server.stop()
        engine.dispose()
        shutdown_tracing()
        logger.info("relay_stopped")
