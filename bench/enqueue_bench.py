"""Producer enqueue rate with publisher confirms (celeryconfig) beside plain kombu publishing.

    .venv/bin/python bench/enqueue_bench.py [--messages 3000] [--quick]

Same broker (a private vhost on the local RabbitMQ), same process, same message shape
(the send-message job's kwargs as JSON). The system side is ``app.send_task`` with the
project's celeryconfig: publisher confirms, durable topic exchange, routing to ``mid``.
The baseline is a kombu ``Producer.publish`` of the same body to the same exchange and
queue without confirms (persistent delivery, as RabbitMQ would otherwise drop it on a
restart). Rounds alternate; the ratio is what confirms (and Celery's envelope) cost. A
third line, kombu with confirms, shows how much of it is the confirms alone.
Nothing consumes: the vhost, and every message in it, is deleted at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery import Celery
from kombu import Connection, Producer

from bench.benchlib import machine_load
from integration_service.queues import TASK_EXCHANGE, consumed_queues, route_for
from tests.support.rabbitmq import private_vhost

TASK = "tasks.messages.send_message"


def job_kwargs(number: int) -> dict[str, str]:
    return {
        "tenant_id": "tenant-enqueue-bench",
        "app_id": "app-0001",
        "peer": "@recipient",
        "text": f"Привет из бенчмарка {number}",
        "idempotency_key": f"enqueue-{number}",
    }


def celery_rate(app: Celery, messages: int) -> float:
    started = time.perf_counter()
    for number in range(messages):
        app.send_task(TASK, kwargs=job_kwargs(number), task_id=str(uuid.uuid4()))
    return messages / (time.perf_counter() - started)


def kombu_rate(connection: Connection, messages: int) -> float:
    route = route_for(TASK)
    assert route is not None
    producer = Producer(connection.channel(), exchange=TASK_EXCHANGE, serializer="json")
    started = time.perf_counter()
    for number in range(messages):
        producer.publish(
            ((), job_kwargs(number), {}),
            routing_key=route["routing_key"],
            delivery_mode=2,
            headers={"task": TASK, "id": str(uuid.uuid4())},
        )
    return messages / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000, help="per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per side")
    parser.add_argument("--quick", action="store_true", help="500 messages, one round")
    options = parser.parse_args()
    if options.quick:
        options.messages, options.rounds = 500, 1

    with private_vhost() as broker_url:
        app = Celery("enqueue-bench")
        app.config_from_object("celeryconfig")
        app.conf.broker_url = broker_url
        assert app.conf.broker_transport_options.get("confirm_publish") is True
        connection = Connection(broker_url)
        # The same kombu publish with confirms separates their cost from Celery's envelope.
        confirming = Connection(broker_url, transport_options={"confirm_publish": True})
        try:
            # Declare the queues once (Celery does it on first publish) and warm both paths.
            with app.connection_for_write() as declaring:
                for queue in consumed_queues():
                    queue.bind(declaring.default_channel).declare()
            celery_rate(app, 50)
            kombu_rate(connection, 50)
            kombu_rate(confirming, 50)
            confirmed, plain, kombu_confirmed = [], [], []
            for _ in range(options.rounds):
                confirmed.append(celery_rate(app, options.messages))
                plain.append(kombu_rate(connection, options.messages))
                kombu_confirmed.append(kombu_rate(confirming, options.messages))
        finally:
            connection.release()
            confirming.release()
            app.close()

    confirmed_rate = sum(confirmed) / len(confirmed)
    plain_rate = sum(plain) / len(plain)
    kombu_confirmed_rate = sum(kombu_confirmed) / len(kombu_confirmed)
    print(machine_load())
    print(
        f"RabbitMQ 127.0.0.1 (private vhost), {options.messages} messages x "
        f"{options.rounds} alternating rounds per side, one producer thread"
    )
    print(f"celery send_task, publisher confirms (celeryconfig): {confirmed_rate:,.0f} msg/s")
    print(f"kombu publish, no confirms:                          {plain_rate:,.0f} msg/s")
    print(f"kombu publish, publisher confirms (for reference):   {kombu_confirmed_rate:,.0f} msg/s")
    print(
        f"RESULT enqueue confirmed={confirmed_rate:.0f}/s plain={plain_rate:.0f}/s "
        f"ratio={confirmed_rate / plain_rate:.2f} kombu_confirmed={kombu_confirmed_rate:.0f}/s"
    )


if __name__ == "__main__":
    main()
