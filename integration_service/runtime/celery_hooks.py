"""Worker lifecycle: declare the topology, consume our own queues, run the runtime.

Worker-lifetime resources are created at worker start and closed at shutdown, never at
import time (importing the Celery app in a producer starts nothing).
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery, signals

from integration_service.queues import declare_topology
from integration_service.runtime import current
from integration_service.runtime.forwarding import worker_queues
from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.settings import get_settings

logger = structlog.get_logger(__name__)


def connect(app: Celery) -> None:
    """Attach the hooks to ``app``'s worker signals (called once by celery_app)."""

    @signals.celeryd_after_setup.connect(weak=False)
    def _consume_own_queues(sender: str, instance: Any, **_: Any) -> None:
        # Before the consumer starts: the worker's own queues, for every job class,
        # so jobs forwarded to the owner of a session always find a consumer.
        ttl = get_settings().worker_queue_message_ttl
        for queue in worker_queues(sender, ttl):
            instance.app.amqp.queues.select_add(queue)

    @signals.worker_init.connect(weak=False)
    def _start(sender: Any = None, **_: Any) -> None:
        with app.connection_for_write() as connection:
            declare_topology(connection)
        runtime = SessionRuntime(get_settings(), worker_id=sender.hostname)
        runtime.start()
        current.install(runtime)

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_: Any) -> None:
        runtime = current.uninstall()
        if runtime is not None:
            # Releases every lease so other workers take over without waiting out a TTL.
            runtime.stop()
