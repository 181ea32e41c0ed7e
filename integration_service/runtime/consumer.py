"""The worker's consumer: a message that cannot be decoded is dead-lettered, not dropped.

Celery acknowledges an undecodable message (and so deletes it) to avoid a redelivery loop.
Rejecting it without requeue avoids the loop too, and the broker moves it to the
dead-letter exchange with ``x-death`` saying why: nothing disappears silently.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery.worker.consumer import Consumer

logger = structlog.get_logger(__name__)


class DeadLetteringConsumer(Consumer):
    def on_decode_error(self, message: Any, exc: Exception) -> None:
        logger.error(
            "undecodable_message_dead_lettered",
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            error=type(exc).__name__,
            size=len(message.body or b""),
        )
        message.reject(requeue=False)
