"""``python -m integration_service.webhooks``: the dispatcher alone, until SIGTERM/SIGINT.

Settings from the environment (DATABASE_URL, WEBHOOK_*, the session cipher's), JSON logs
on stderr, /metrics on METRICS_PORT when set. ``integration-service relay`` hosts the
same ``WebhookDispatcher`` next to the RabbitMQ relay.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import structlog
from prometheus_client import start_http_server

from integration_service.crypto import build_cipher
from integration_service.observability.logging import configure_logging
from integration_service.settings import get_settings
from integration_service.store import build_engine
from integration_service.tracing import configure_tracing, shutdown_tracing
from integration_service.webhooks.dispatcher import WebhookDispatcher


def main() -> int:
    settings = get_settings()
    configure_logging(settings.log_level, worker="webhooks")
    configure_tracing(settings, "webhooks")
    logger = structlog.get_logger("integration_service.webhooks")
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    engine = build_engine(settings)
    dispatcher = WebhookDispatcher(settings, engine, build_cipher(settings))
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("webhook_dispatcher_stopping", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    dispatcher.start()
    try:
        while not stopping.wait(0.5):
            if not dispatcher.is_alive():
                logger.error("webhook_dispatcher_exited")
                return 1
    finally:
        dispatcher.stop()
        engine.dispose()
        shutdown_tracing()
    return 0


if __name__ == "__main__":
    sys.exit(main())
