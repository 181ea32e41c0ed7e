"""``integration-service relay``: the event log to RabbitMQ (and to webhooks), as a process.

Runs the ``EventRelay`` (and the webhook dispatcher, when the webhooks package provides
one) until SIGTERM or SIGINT, logs JSON lines like every process of the system, and
serves /metrics and /health on METRICS_PORT as workers do. Several relays may run at
once: each round locks its rows with SKIP LOCKED, so no row is published by two.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Protocol

import click

from integration_service.cli.output import guarded

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from integration_service.inbound.relay import EventRelay
    from integration_service.observability.health import HealthReport
    from integration_service.settings import Settings

# A relay whose loop has not finished a round for this long is stuck (a round is bounded
# by the confirm timeout and the backoff, both far below this).
STALLED_AFTER_SECONDS = 120.0
# What readiness checks: the relay needs the broker and PostgreSQL (Vault only for the
# webhook secrets), not Redis.
READINESS_CHECKS = frozenset({"broker", "postgres", "vault"})


class Hosted(Protocol):
    """A component the relay process runs beside the relay (the webhook dispatcher)."""

    def start(self) -> object: ...

    def stop(self) -> None: ...


def webhook_dispatcher(settings: Settings, engine: Engine) -> Hosted | None:
    """The webhook dispatcher, when ``integration_service.webhooks`` provides one."""
    if importlib.util.find_spec("integration_service.webhooks") is None:
        return None
    module = importlib.import_module("integration_service.webhooks")
    dispatcher_class = getattr(module, "WebhookDispatcher", None)
    if dispatcher_class is None:
        return None
    from integration_service.crypto import build_cipher

    dispatcher: Hosted = dispatcher_class(settings, engine, build_cipher(settings))
    return dispatcher


def relay_health(relay: EventRelay, report: HealthReport) -> HealthReport:
    """``report`` plus whether the relay's loop is turning."""
    from integration_service.observability.health import CheckResult, HealthReport

    idle = time.monotonic() - relay.last_round_at
    ok = relay.running and idle < STALLED_AFTER_SECONDS
    detail = f"last round {idle:.1f}s ago" if relay.running else "relay thread not running"
    return HealthReport((*report.checks, CheckResult("relay", ok, 0.0, detail)))


@click.command("relay")
@guarded
def relay() -> None:
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

    settings = get_settings()
    configure_logging(settings.log_level)
    logger = structlog.get_logger("integration_service.relay")
    engine = build_engine(settings)
    event_relay = EventRelay(settings, engine)
    hosted: list[Hosted] = []
    dispatcher = webhook_dispatcher(settings, engine)
    if dispatcher is not None:
        hosted.append(dispatcher)

    class RelayObservability(ObservabilityServer):
        def liveness(self) -> HealthReport:
            return relay_health(event_relay, run_liveness(timeout=self.check_timeout))

        def readiness(self) -> HealthReport:
            checks = run_checks(self.settings, timeout=self.check_timeout).checks
            needed = HealthReport(tuple(c for c in checks if c.name in READINESS_CHECKS))
            return relay_health(event_relay, needed)

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
        for component in hosted:
            component.start()
        logger.info("relay_ready", webhooks=dispatcher is not None)
        while not stopping.wait(1.0):
            pass
    finally:
        for component in reversed(hosted):
            component.stop()
        event_relay.stop()
        for server in servers:
            server.stop()
        engine.dispose()
        logger.info("relay_stopped")
