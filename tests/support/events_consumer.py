"""A RabbitMQ consumer of the ``events`` exchange in a thread of the test (or bench): its
own auto-deleted queue bound to a routing pattern, each message handed to a callback."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kombu import Connection, Exchange, Queue

OnMessage = Callable[[Any, Any], None]  # (decoded body, kombu message)


class EventsConsumer:
    """``ack``: acknowledge each message after its callback (a bench passes False: the
    broker then delivers without waiting for acks)."""

    def __init__(
        self,
        broker_url: str,
        queue: str,
        routing_key: str,
        on_message: OnMessage,
        *,
        ack: bool = True,
    ) -> None:
        self._broker_url = broker_url
        self._ack = ack
        self._queue = Queue(
            queue,
            Exchange("events", type="topic", durable=True),
            routing_key=routing_key,
            auto_delete=True,
        )
        self._on_message = on_message
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="events-consumer", daemon=True)

    def __enter__(self) -> EventsConsumer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the events consumer did not bind its queue")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with Connection(self._broker_url) as conn:

            def got(body: Any, message: Any) -> None:
                self._on_message(body, message)
                if self._ack:
                    message.ack()

            with conn.Consumer(self._queue, callbacks=[got], accept=["json"], no_ack=not self._ack):
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue
